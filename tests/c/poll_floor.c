// SPDX-License-Identifier: GPL-2.0-only
/*
 * poll_floor: the reference floor of the latency benchmark (cargo xtask bench).
 *
 * The least a watcher of a sysfs attribute can do: read the file once (which arms the kernfs
 * notification), then loop on poll(POLLPRI) and pread at offset 0. No timeout, no allocation,
 * no parsing beyond cutting the newline.
 *
 * Output, one flushed line each, for the benchmark reading the pipe:
 *   "ready <word>"               after the first read;
 *   "<ns> <word>"                for every read that shows a word different from the last one,
 *                                where <ns> is clock_gettime(CLOCK_MONOTONIC) taken once the
 *                                word is read and compared (the clock is system-wide, so the
 *                                benchmark compares it with the time it took before its ioctl).
 *
 * Usage: poll_floor PATH. Exits 0 once PATH is removed (the read fails with ENODEV), 1 on
 * another error, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A sysfs show writes one word and a newline; anything this long is not our attribute. */
#define WORD_MAX 64

/* Reads the file at offset 0 into buf (NUL-terminated, newline cut); -1 with errno on error. */
static int read_word(int fd, char *buf, size_t cap)
{
	ssize_t len;

	do {
		len = pread(fd, buf, cap - 1, 0);
	} while (len < 0 && errno == EINTR);
	if (len < 0)
		return -1;
	while (len > 0 && buf[len - 1] == '\n')
		len--;
	buf[len] = '\0';
	return 0;
}

int main(int argc, char **argv)
{
	char last[WORD_MAX], now[WORD_MAX];
	struct pollfd pfd;
	struct timespec ts;
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	/* The first read arms the notification: poll sleeps until a change after it. */
	if (read_word(fd, last, sizeof(last)) < 0) {
		perror("pread");
		return 1;
	}
	printf("ready %s\n", last);
	fflush(stdout);

	pfd.fd = fd;
	pfd.events = POLLPRI;
	for (;;) {
		/* POLLIN is always set on sysfs: only POLLPRI (with POLLERR) means "changed". */
		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("poll");
			return 1;
		}
		if (read_word(fd, now, sizeof(now)) < 0) {
			if (errno == ENODEV)
				return 0; /* the attribute is gone: stop, do not spin */
			perror("pread");
			return 1;
		}
		if (strcmp(now, last) == 0)
			continue; /* a wake that shows the same word: nothing to report */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		printf("%lld %s\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, now);
		fflush(stdout);
		memcpy(last, now, sizeof(last));
	}
}
