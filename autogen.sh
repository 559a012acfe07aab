#!/bin/sh
# Regenerate the build system from configure.ac and Makefile.am.
set -e
srcdir=$(dirname "$0")
test -n "$srcdir" || srcdir=.
autoreconf --force --install --verbose "$srcdir"
if test -z "$NOCONFIGURE"; then
	exec "$srcdir/configure" "$@"
fi
