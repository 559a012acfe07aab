/* The daemon's event loop: epoll over fd sources, one CLOCK_MONOTONIC
 * timerfd for every timer, signals through a signalfd. Single-threaded.
 * Sources and timers may be removed or freed from inside any callback;
 * the memory is released at the end of the dispatch pass. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

struct loop;
struct loop_source;
struct loop_timer;

typedef void (*loop_fd_fn)(struct loop_source *src, int fd, uint32_t revents, void *data);
typedef void (*loop_timer_fn)(struct loop_timer *timer, void *data);
typedef void (*loop_signal_fn)(struct loop *loop, int signo, void *data);

/* NULL with errno set if epoll/timerfd/signalfd cannot be created. */
struct loop *loop_new(void);
/* Frees every source and timer still registered (never closes their fds)
 * and restores the signal mask. NULL is a no-op. */
void loop_free(struct loop *loop);

/* Watch fd (borrowed: the caller keeps owning it and must remove the
 * source before closing it) for EPOLLIN/EPOLLOUT/... Returns NULL with
 * errno set on failure (EEXIST if fd is already watched). */
struct loop_source *loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_fn fn,
				void *data);
/* Change the events watched; 0 or -errno. */
int loop_source_set_events(struct loop_source *src, uint32_t events);
/* Stop watching and free (deferred while dispatching). NULL is a no-op. */
void loop_source_remove(struct loop_source *src);

/* A timer, disarmed until loop_timer_arm*(). */
struct loop_timer *loop_timer_new(struct loop *loop, loop_timer_fn fn, void *data);
/* Fire once at the absolute CLOCK_MONOTONIC time `deadline_usec` (see now_usec()). */
void loop_timer_arm(struct loop_timer *timer, uint64_t deadline_usec);
/* Fire once `usec` from now. */
void loop_timer_arm_in(struct loop_timer *timer, uint64_t usec);
void loop_timer_disarm(struct loop_timer *timer);
bool loop_timer_armed(const struct loop_timer *timer);
/* Disarm and free (deferred while dispatching). NULL is a no-op. */
void loop_timer_free(struct loop_timer *timer);

/* Deliver signo through the loop (it is blocked for the process). One
 * handler per signal; 0, -EEXIST, or -errno. */
int loop_add_signal(struct loop *loop, int signo, loop_signal_fn fn, void *data);
/* Call nobody for signo any more (it stays blocked and is read and
 * dropped); another handler may be added. */
void loop_remove_signal(struct loop *loop, int signo);

/* Wait up to timeout_ms (-1: forever) and dispatch one batch of events;
 * returns the number of callbacks run, or -errno. */
int loop_dispatch(struct loop *loop, int timeout_ms);
/* Dispatch until loop_quit(); returns the exit code given to it. */
int loop_run(struct loop *loop);
void loop_quit(struct loop *loop, int code);
