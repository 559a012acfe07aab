/* Benchmarks on a fake USB tree (tests/integration/usbbed, umockdev):
 * setting the testbed up for timing, and the moment each uevent goes out.
 *
 * umockdev hands each uevent to every program listening under the
 * testbed (vmplugd, QEMU's libusb), one sendmsg() per listener socket
 * $UMOCKDEV_DIR/eventN, from inside the plug and unplug calls of the
 * program that owns the testbed. A program that links testbed.c has a
 * sendmsg() of its own in front of libc's, which
 *   - notes when the first of them went out;
 *   - when a listener's queue is full (EAGAIN: it is behind), waits until
 *     it has room instead of letting umockdev drop the event (a real
 *     kernel drops it too, with ENOBUFS, which vmplugd answers by
 *     enumerating again; on the testbed the loss would be silent);
 *   - on request, holds the uevents of a plug back until the call
 *     returns: umockdev sends "add" before it has written the device's
 *     descriptors and made its node, so a listener that reads them at
 *     once (QEMU's libusb) may miss the device, which never happens with
 *     a kernel's sysfs. */
#pragma once

#include <stdint.h>

/* Call first thing in main(): as root the program moves to a network
 * namespace of its own whose net.unix.max_dgram_qlen is 4096 (10 by
 * default: a busy listener soon has that many uevents waiting), then it
 * re-runs itself under the umockdev preload (usbbed_reexec()). */
void bench_testbed_setup(char **argv);

/* Hold the uevents sent from now on, until bench_uevent_release() sends
 * them (in order, to the same listeners). */
void bench_uevent_hold(void);
void bench_uevent_release(void);

/* Note the time of the next uevent sent (forgetting the last one). */
void bench_uevent_arm(void);
/* CLOCK_REALTIME microseconds when the armed uevent started going out,
 * 0 if none did since bench_uevent_arm(). */
uint64_t bench_uevent_time(void);
/* How many times a listener was behind and sending waited for it. */
unsigned long bench_uevent_waits(void);

/* umockdev names a listener's socket after the listening fd's number, and
 * a later listener with the same number takes the name over. Before
 * starting a program that listens (QEMU), bench_fd_pad(n) makes the
 * lowest n free fds busy (inherited), bench_fd_unpad() frees them again,
 * so that program's fds do not collide with those of one started later. */
void bench_fd_pad(int n);
void bench_fd_unpad(void);
