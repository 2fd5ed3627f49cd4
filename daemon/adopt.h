/*
 * adopt.h - a successor takes its clients' descriptors back: the
 * userfaultfd and the memfds a dead uzswapd held live on in the clients'
 * own fd tables, at the numbers the clients registered them under; the
 * successor takes them from there with pidfd_getfd(2) (CAP_SYS_PTRACE, as
 * the unit grants) and checks that each is the file the superblock
 * recorded, never another that took its number since.
 *
 * Private to uzswapd. Any thread; nothing here keeps state.
 * Errors: -ESRCH (the process is gone), -ESTALE (the pid or the fd
 * number now names something else), -EPERM (no right to the process's
 * descriptors), other -errno from the system.
 */
#ifndef UZSWAPD_ADOPT_H
#define UZSWAPD_ADOPT_H

#include <stdint.h>
#include <sys/types.h>

/* When process @pid started (clock ticks after boot, field 22 of
 * /proc/PID/stat): with the pid, it names a process for good. 0 or
 * -errno; -ESRCH if there is no such process. */
int adopt_start_time(pid_t pid, uint64_t *ticks);

/* A pidfd of process @pid if it is still the one that started at
 * @start_time. Return: the pidfd, or -errno. */
int adopt_process(pid_t pid, uint64_t start_time);

/* The process's (@pidfd) descriptor @fdnum if it is a non-blocking
 * userfaultfd. Return: our descriptor of it (close-on-exec), or -errno. */
int adopt_uffd(int pidfd, int fdnum);

/* The process's (@pidfd) descriptor @fdnum if it is the file (@dev,
 * @ino): the memfd of a region. Return: our descriptor, or -errno. */
int adopt_memfd(int pidfd, int fdnum, dev_t dev, ino_t ino);

#endif /* UZSWAPD_ADOPT_H */
