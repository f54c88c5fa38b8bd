// SPDX-License-Identifier: GPL-2.0-only
/*
 * poll_floor: the reference floor of the latency benchmark (cargo xtask bench).
 *
 * The least a watcher of a sysfs attribute can do: read the file once (which arms the kernfs
 * notification), then loop on poll(POLLPRI) and pread at offset 0. No timeout, no allocation,
 * no parsing beyond cutting the newline.
 *
 * It reports exactly as the Rust watchers of the benchmark do (tests/src/bench/record.rs):
 * one 32-byte record per event, written with one write(2) to standard output, a pipe that all
 * the watchers of a run share (a write below PIPE_BUF is atomic, so records never interleave):
 *   READY  once, after the first read (ns is 0);
 *   CHANGE for every read that shows a word different from the last one, where ns is
 *          clock_gettime(CLOCK_MONOTONIC) taken once the word is read and compared (the clock
 *          is system-wide, so the benchmark compares it with the time it took before its
 *          ioctl).
 *
 * Usage: poll_floor PATH ID [COUNT]. Watches PATH as watcher ID; exits 0 once PATH is removed
 * (the read fails with ENODEV), 1 on another error, 2 on bad usage.
 *
 * With COUNT, it starts COUNT watchers instead, numbered ID to ID + COUNT - 1, each a process
 * of its own forked from this one (a fork costs a fraction of an exec under TCG, where an exec
 * from the 9p root takes a tenth of a second), and stays their parent, out of the way, until
 * its standard input closes; then it kills and reaps them and exits. The Rust watchers of the
 * benchmark start the same way (luo-bench watch VARIANT ID COUNT).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A sysfs show writes one word and a newline; anything this long is not our attribute. */
#define WORD_MAX 64

enum { READY = 0, CHANGE = 1 };

/* The record of tests/src/bench/record.rs: 8 + 4 + 4 + 16 bytes, no padding. */
struct record {
	uint64_t ns;
	uint32_t id;
	uint32_t kind;
	char word[16];
};

_Static_assert(sizeof(struct record) == 32, "the record is 32 bytes on both sides");

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

/* One record, one write(2); a pipe takes it whole or fails. */
static int send_record(uint32_t id, uint32_t kind, uint64_t ns, const char *word)
{
	struct record rec;
	size_t len = strlen(word);

	memset(&rec, 0, sizeof(rec));
	rec.ns = ns;
	rec.id = id;
	rec.kind = kind;
	memcpy(rec.word, word, len < sizeof(rec.word) ? len : sizeof(rec.word));
	return write(STDOUT_FILENO, &rec, sizeof(rec)) == (ssize_t)sizeof(rec) ? 0 : -1;
}

/* Watches path as watcher id until the file is removed or an error. */
static int watch(const char *path, uint32_t id)
{
	char last[WORD_MAX], now[WORD_MAX];
	struct pollfd pfd;
	struct timespec ts;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	/* The first read arms the notification: poll sleeps until a change after it. */
	if (read_word(fd, last, sizeof(last)) < 0) {
		perror("pread");
		return 1;
	}
	if (send_record(id, READY, 0, last) < 0) {
		perror("write");
		return 1;
	}

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
		if (send_record(id, CHANGE,
				(uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec, now) < 0) {
			perror("write");
			return 1;
		}
		memcpy(last, now, sizeof(last));
	}
}

/*
 * Forks count watchers, then waits for standard input to close and kills and reaps them.
 * The watchers are forked before anything else is opened, so each opens the file itself.
 */
static int launch(const char *path, uint32_t first, uint32_t count)
{
	pid_t *pids = calloc(count, sizeof(*pids));
	uint32_t started, i;
	int status = 0;
	char c;

	if (!pids) {
		perror("calloc");
		return 1;
	}
	for (started = 0; started < count; started++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(watch(path, first + started));
		if (pid < 0) {
			perror("fork");
			status = 1;
			break;
		}
		pids[started] = pid;
	}
	/* Only the watchers keep the report pipe open, so the benchmark sees them end. */
	close(STDOUT_FILENO);
	while (status == 0) {
		ssize_t n = read(STDIN_FILENO, &c, 1);

		if (n == 0 || (n < 0 && errno != EINTR))
			break; /* closed (or unreadable): the benchmark is done with us */
	}
	for (i = 0; i < started; i++)
		kill(pids[i], SIGKILL);
	for (i = 0; i < started; i++)
		while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
			;
	free(pids);
	return status;
}

int main(int argc, char **argv)
{
	uint32_t id;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s PATH ID [COUNT]\n", argv[0]);
		return 2;
	}
	id = (uint32_t)strtoul(argv[2], NULL, 10);
	if (argc == 4)
		return launch(argv[1], id, (uint32_t)strtoul(argv[3], NULL, 10));
	return watch(argv[1], id);
}
