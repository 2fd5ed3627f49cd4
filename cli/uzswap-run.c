/*
 * uzswap-run.c - run an unmodified program with its malloc heap managed
 * by uzswapd.
 *
 * uzswap-run does no memory management itself. It sets the environment
 * that the preload library (libuzswap-preload.so, which replaces malloc
 * with jemalloc whose extents live in a region the daemon manages) reads,
 * then execs the program in its own process, as nice(1) and env(1) do:
 * same pid, exit status and signals, execvp()'s $PATH search.
 *
 * The environment is the contract with the library (uzswap-run(1) lists
 * it): LD_PRELOAD gets the library prepended; UZSWAP_LIMIT (--limit),
 * UZSWAP_SOCKET (--socket), UZSWAP_NAME (--name) and UZSWAP_REQUIRE=1
 * (--require) are set when given, and are left as inherited otherwise;
 * PYTHONMALLOC=malloc always, so that CPython's objects go through malloc.
 *
 * A program the library cannot reach would run unmanaged without a word,
 * so before the exec uzswap-run reads the file execvp() would run:
 *   - a "#!" script: its interpreter instead, as the kernel does, at most
 *     MAX_INTERP_DEPTH levels; for "#!/usr/bin/env CMD", CMD in $PATH;
 *   - an ELF file: it must be of this machine (class, byte order,
 *     e_machine: the library is built with uzswap-run), have a PT_INTERP
 *     (static and static-pie programs load no library), have no setuid or
 *     setgid bit and no file capabilities (the loader runs those in
 *     secure-execution mode, where it ignores LD_PRELOAD), and not be Go
 *     (its runtime never calls malloc for its heap): a Go section, or for
 *     a file without section headers a "Go" note;
 *   - anything else, or a file uzswap-run cannot read (execute-only): the
 *     exec decides (execvp() runs a file without "#!" with /bin/sh).
 * Reading is bounded: at most 256 bytes of a script, one table of program
 * headers, one of section headers and their names, a few notes.
 *
 * With --require it also checks that the daemon answers (an admin
 * connection, then its version), as the library will; without it, the
 * library alone decides what to do when the daemon is away.
 *
 * Errors: one line on stderr that says what to do, and a status of
 * run-exit.h; nothing is exec'ed then.
 */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/common/run-exit.h"
#include "lib/common/size.h"
#include "uzswap.h"

#define MAX_INTERP_DEPTH 4	/* "#!" levels, as the kernel's
				 * BINPRM_MAX_RECURSION */
#define SHEBANG_MAX	256	/* bytes of a "#!" line the kernel reads
				 * (BINPRM_BUF_SIZE) */
#define MAX_SECTIONS	65536	/* section headers read at most */
#define MAX_SHSTRTAB	(1u << 20) /* bytes of section names read at most */
#define MAX_NOTES	(1u << 16) /* bytes of a PT_NOTE segment read at
				    * most */
#define MIN_LIMIT	(1u << 20) /* the daemon's smallest budget */
#define DEFAULT_PATH	"/bin:/usr/bin"	/* execvp()'s without $PATH */

#ifndef UZSWAP_PRELOAD_PATH
#error "UZSWAP_PRELOAD_PATH (the installed preload library) must be defined"
#endif

/* The ELF identity of the programs the preload library can load into:
 * uzswap-run's own (they are built together). */
#if __SIZEOF_POINTER__ == 8
#define RUN_ELF_CLASS	ELFCLASS64
#else
#define RUN_ELF_CLASS	ELFCLASS32
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RUN_ELF_DATA	ELFDATA2LSB
#else
#define RUN_ELF_DATA	ELFDATA2MSB
#endif
#if defined(__x86_64__)
#define RUN_ELF_MACHINE	EM_X86_64
#elif defined(__aarch64__)
#define RUN_ELF_MACHINE	EM_AARCH64
#elif defined(__powerpc64__)
#define RUN_ELF_MACHINE	EM_PPC64
#elif defined(__s390x__)
#define RUN_ELF_MACHINE	EM_S390
#elif defined(__riscv)
#define RUN_ELF_MACHINE	EM_RISCV
#else
#define RUN_ELF_MACHINE	EM_NONE	/* unknown here: not checked */
#endif

/* What the command line (and the inherited environment) asks for. */
struct run_opts {
	const char *limit;	/* --limit, as given; NULL: not given */
	const char *socket;	/* --socket; NULL: not given */
	const char *name;	/* --name; NULL: not given */
	bool require;		/* --require */
	char **argv;		/* PROGRAM [ARGS...] */
};

/*****************
 * Errors
 *****************/

static int fail(int status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print "uzswap-run: " and @fmt as one line on stderr; return @status. */
static int fail(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "uzswap-run: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

static int usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "uzswap-run: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see uzswap-run --help)\n");
	return UZSWAP_RUN_ERROR;
}

/*****************
 * Finding the program
 *****************/

/* Whether @path is a file execve() may run. */
static bool executable_file(const char *path)
{
	struct stat st;

	return !stat(path, &st) && S_ISREG(st.st_mode) && !access(path, X_OK);
}

/*
 * find_program() - the file execvp() would run for @name, into @out (with
 * a slash, so that execvp() runs it without searching again): @name itself
 * if it has a slash, else the first executable file of that name in the
 * directories of $PATH (DEFAULT_PATH if unset; an empty entry is the
 * current directory).
 * Return: 0; -ENOENT if there is none; -EACCES if there are only files or
 * directories of that name that cannot be executed; -ENAMETOOLONG.
 */
static int find_program(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH"), *dir, *end;
	bool denied = false;
	size_t len;

	if (!*name)
		return -ENOENT;
	if (strchr(name, '/')) {
		if ((size_t)snprintf(out, size, "%s", name) >= size)
			return -ENAMETOOLONG;
		if (access(name, F_OK))
			return -errno;
		return executable_file(name) ? 0 : -EACCES;
	}
	if (!path)
		path = DEFAULT_PATH;
	for (dir = path; ; dir = end + 1) {
		end = strchrnul(dir, ':');
		len = (size_t)(end - dir);
		if ((size_t)snprintf(out, size, "%.*s/%s", (int)len,
				     len ? dir : ".", name) < size) {
			if (executable_file(out))
				return 0;
			if (!access(out, F_OK))
				denied = true;
		}
		if (!*end)
			break;
	}
	return denied ? -EACCES : -ENOENT;
}

/*****************
 * Checking the program: can the preload library reach it?
 *****************/

/* Why the preload library cannot reach a program (reach_text[]). */
enum reach {
	REACH_OK = 0,
	REACH_STATIC,
	REACH_CLASS,
	REACH_MACHINE,
	REACH_SETUID,
	REACH_SETGID,
	REACH_FILECAP,
	REACH_GO,
};

/* What each refusal says after "uzswap-run: PROGRAM: ". */
static const char *const reach_text[] = {
	[REACH_STATIC] = "statically linked: the uzswap preload library "
		"cannot reach it; run it without uzswap-run",
	[REACH_CLASS] = "not a 64-bit program: the uzswap preload library "
		"cannot load into it; run it without uzswap-run",
	[REACH_MACHINE] = "built for another machine than uzswap-run: the "
		"uzswap preload library cannot load into it; run it without "
		"uzswap-run",
	[REACH_SETUID] = "setuid: the loader runs it in secure-execution "
		"mode and ignores LD_PRELOAD; run it without uzswap-run (or a "
		"copy without the setuid bit)",
	[REACH_SETGID] = "setgid: the loader runs it in secure-execution "
		"mode and ignores LD_PRELOAD; run it without uzswap-run (or a "
		"copy without the setgid bit)",
	[REACH_FILECAP] = "has file capabilities (security.capability): the "
		"loader runs it in secure-execution mode and ignores "
		"LD_PRELOAD; run it without uzswap-run",
	[REACH_GO] = "a Go program: Go's runtime keeps its heap without "
		"malloc, so the uzswap preload library cannot manage it; run "
		"it without uzswap-run (GOMEMLIMIT bounds its heap)",
};

/* Read exactly @len bytes of @fd at @off. Return: 0 or -EIO. */
static int read_at(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n = pread(fd, buf, len, off);

	return n >= 0 && (size_t)n == len ? 0 : -EIO;
}

/* A table of @n entries of @entsize bytes at @off of @fd, allocated
 * (free() it); NULL if it cannot be read. */
static void *read_table(int fd, uint64_t off, uint64_t n, size_t entsize)
{
	void *p;

	if (!n || n > MAX_SECTIONS || off > (uint64_t)LLONG_MAX)
		return NULL;
	p = malloc(n * entsize);
	if (p && read_at(fd, p, n * entsize, (off_t)off)) {
		free(p);
		p = NULL;
	}
	return p;
}

/* The program headers of @fd (free() them), or NULL if they cannot be
 * read (or are more than the header can count). */
static ElfW(Phdr) *elf_phdrs(int fd, const ElfW(Ehdr) *eh)
{
	if (eh->e_phentsize != sizeof(ElfW(Phdr)) || eh->e_phnum == PN_XNUM)
		return NULL;
	return read_table(fd, eh->e_phoff, eh->e_phnum, sizeof(ElfW(Phdr)));
}

/* Whether program headers @ph (@n) ask for a loader: PT_INTERP. */
static bool elf_has_interp(const ElfW(Phdr) *ph, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ph[i].p_type == PT_INTERP)
			return true;
	return false;
}

/* Whether @fd has a section named .go.buildinfo or .note.go.buildid. */
static bool elf_has_go_section(int fd, const ElfW(Ehdr) *eh)
{
	ElfW(Shdr) *sh, *names;
	size_t n, strndx, i;
	char *strtab = NULL;
	bool go = false;

	if (!eh->e_shoff || eh->e_shentsize != sizeof(ElfW(Shdr)))
		return false;
	sh = read_table(fd, eh->e_shoff, eh->e_shnum ? eh->e_shnum : 1,
			sizeof(*sh));
	if (!sh)
		return false;
	n = eh->e_shnum ? eh->e_shnum : sh[0].sh_size;	/* SHN_LORESERVE+ */
	strndx = eh->e_shstrndx == SHN_XINDEX ? sh[0].sh_link : eh->e_shstrndx;
	if (!eh->e_shnum && n > 1) {
		free(sh);
		sh = read_table(fd, eh->e_shoff, n, sizeof(*sh));
		if (!sh)
			return false;
	}
	if (strndx >= n)
		goto out_free_sh;
	names = &sh[strndx];
	if (!names->sh_size || names->sh_size > MAX_SHSTRTAB)
		goto out_free_sh;
	strtab = malloc(names->sh_size + 1);
	if (!strtab || read_at(fd, strtab, names->sh_size,
			       (off_t)names->sh_offset))
		goto out_free_strtab;
	strtab[names->sh_size] = '\0';
	for (i = 0; i < n && !go; i++) {
		if (sh[i].sh_name >= names->sh_size)
			continue;
		go = !strcmp(strtab + sh[i].sh_name, ".go.buildinfo") ||
		     !strcmp(strtab + sh[i].sh_name, ".note.go.buildid");
	}
out_free_strtab:
	free(strtab);
out_free_sh:
	free(sh);
	return go;
}

/* Whether the PT_NOTE segments of @fd hold a note of owner "Go" (its
 * build id, for a file stripped of its section headers). */
static bool elf_has_go_note(int fd, const ElfW(Phdr) *ph, size_t phnum)
{
	unsigned char *buf;
	ElfW(Nhdr) nh;
	size_t i, off, size;
	bool go = false;

	for (i = 0; i < phnum && !go; i++) {
		if (ph[i].p_type != PT_NOTE || !ph[i].p_filesz ||
		    ph[i].p_filesz > MAX_NOTES)
			continue;
		size = ph[i].p_filesz;
		buf = malloc(size);
		if (!buf)
			return false;
		if (read_at(fd, buf, size, (off_t)ph[i].p_offset))
			size = 0;
		for (off = 0; off + sizeof(nh) <= size && !go;) {
			memcpy(&nh, buf + off, sizeof(nh));
			off += sizeof(nh);
			go = nh.n_namesz == 3 && off + 3 <= size &&
			     !memcmp(buf + off, "Go", 3);
			off += ((size_t)nh.n_namesz + 3) & ~(size_t)3;
			off += ((size_t)nh.n_descsz + 3) & ~(size_t)3;
		}
		free(buf);
	}
	return go;
}

/*
 * check_elf() - whether the preload library can reach the ELF program @fd
 * (@st its stat, @eh its header).
 * Return: REACH_OK, or why not.
 */
static enum reach check_elf(int fd, const struct stat *st,
			    const ElfW(Ehdr) *eh)
{
	ElfW(Phdr) *phdrs;
	enum reach why = REACH_OK;

	if (eh->e_ident[EI_CLASS] != RUN_ELF_CLASS)
		return REACH_CLASS;
	if (eh->e_ident[EI_DATA] != RUN_ELF_DATA ||
	    (RUN_ELF_MACHINE != EM_NONE && eh->e_machine != RUN_ELF_MACHINE))
		return REACH_MACHINE;
	if (eh->e_type != ET_EXEC && eh->e_type != ET_DYN)
		return REACH_OK;		/* execve() refuses it */
	phdrs = elf_phdrs(fd, eh);
	if (!phdrs)
		return REACH_OK;		/* execve() decides */
	if (!elf_has_interp(phdrs, eh->e_phnum))
		why = REACH_STATIC;
	else if (st->st_mode & S_ISUID)
		why = REACH_SETUID;
	else if ((st->st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		why = REACH_SETGID;	/* without S_IXGRP: not a setgid exec */
	else if (fgetxattr(fd, "security.capability", NULL, 0) >= 0)
		why = REACH_FILECAP;
	else if (elf_has_go_section(fd, eh) ||
		 elf_has_go_note(fd, phdrs, eh->e_phnum))
		why = REACH_GO;
	free(phdrs);
	return why;
}

static enum reach check_file(const char *path, int depth, char *culprit,
			     size_t size);

/*
 * check_env_command() - for a script of "#!.../env ARGS", check the
 * command that env runs: the first word of @args that is not -S or an
 * assignment, found in $PATH. A command env would not find, or other env
 * options: the exec decides.
 */
static enum reach check_env_command(char *args, int depth, char *culprit,
				    size_t size)
{
	char path[PATH_MAX], *word, *save;

	for (word = strtok_r(args, " \t", &save); word;
	     word = strtok_r(NULL, " \t", &save)) {
		if (!strcmp(word, "-S") || strchr(word, '='))
			continue;
		if (word[0] == '-' || find_program(word, path, sizeof(path)))
			return REACH_OK;
		return check_file(path, depth, culprit, size);
	}
	return REACH_OK;
}

/*
 * check_script() - whether the preload library can reach the interpreter
 * of the "#!" line in @buf (@len bytes, the file's start), itself at
 * @depth: as the kernel reads it, the interpreter is the first word and
 * its argument the rest of the line.
 */
static enum reach check_script(char *buf, size_t len, int depth,
			       char *culprit, size_t size)
{
	char *interp, *args, *end, *base;

	if (depth >= MAX_INTERP_DEPTH)
		return REACH_OK;		/* execve() refuses it: ELOOP */
	buf[len] = '\0';
	end = strchr(buf, '\n');
	if (end)
		*end = '\0';
	interp = buf + 2 + strspn(buf + 2, " \t");
	args = interp + strcspn(interp, " \t");
	if (*args)
		*args++ = '\0';
	if (!*interp)
		return REACH_OK;		/* execve() refuses it */
	base = strrchr(interp, '/');
	base = base ? base + 1 : interp;
	if (!strcmp(base, "env") && *args)
		return check_env_command(args, depth + 1, culprit, size);
	return check_file(interp, depth + 1, culprit, size);
}

/*
 * check_file() - whether the preload library can reach the program that
 * execve() of @path (at interpreter @depth, 0 for the program itself)
 * runs. A refusal names the file refused in @culprit.
 * Return: REACH_OK, or why not.
 */
static enum reach check_file(const char *path, int depth, char *culprit,
			     size_t size)
{
	char buf[SHEBANG_MAX + 1];
	enum reach why = REACH_OK;
	ElfW(Ehdr) eh;
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return REACH_OK;		/* unreadable: not checked */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		goto out_close;
	n = pread(fd, buf, SHEBANG_MAX, 0);
	if (n >= 2 && buf[0] == '#' && buf[1] == '!') {
		close(fd);
		return check_script(buf, (size_t)n, depth, culprit, size);
	}
	if (n >= (ssize_t)sizeof(eh) && !memcmp(buf, ELFMAG, SELFMAG)) {
		memcpy(&eh, buf, sizeof(eh));
		why = check_elf(fd, &st, &eh);
	} else if (n >= EI_NIDENT && !memcmp(buf, ELFMAG, SELFMAG)) {
		why = REACH_CLASS;	/* too short for our class */
	}
	if (why)
		snprintf(culprit, size, "%s", path);
out_close:
	close(fd);
	return why;
}

/* Refuse @program if the preload library cannot reach it (its file
 * @path). Return: 0 or UZSWAP_RUN_UNREACHABLE, reported. */
static int check_program(const char *program, const char *path)
{
	char culprit[PATH_MAX];
	enum reach why;

	why = check_file(path, 0, culprit, sizeof(culprit));
	if (!why)
		return 0;
	if (!strcmp(culprit, path))
		return fail(UZSWAP_RUN_UNREACHABLE, "%s: %s", program,
			    reach_text[why]);
	return fail(UZSWAP_RUN_UNREACHABLE, "%s: its interpreter %s: %s",
		    program, culprit, reach_text[why]);
}

/*****************
 * The daemon, the library, the environment
 *****************/

/* With --require: the daemon must answer, as the library will need.
 * Return: 0 or UZSWAP_RUN_NO_DAEMON, reported. */
static int check_daemon(const struct run_opts *o)
{
	const char *shown = o->socket ? o->socket : getenv("UZSWAP_SOCKET");
	char release[64];
	uzswap_t *conn;
	int ret;

	if (!shown || !*shown)
		shown = UZSWAP_DEFAULT_SOCKET;
	conn = uzswap_admin_connect(o->socket);
	if (!conn) {
		ret = -errno;
	} else {
		ret = uzswap_daemon_version(conn, release, sizeof(release),
					    NULL);
		uzswap_disconnect(conn);
	}
	if (!ret)
		return 0;
	return fail(UZSWAP_RUN_NO_DAEMON, "--require: cannot reach uzswapd at "
		    "%s: %s", shown, uzswap_strerror(ret));
}

/*
 * find_preload() - the preload library's path, absolute, into @out:
 * $UZSWAP_PRELOAD if set, else the installed one. It must be a file, and
 * fit in LD_PRELOAD (no ':' or blank, which separate its entries).
 * Return: 0 or UZSWAP_RUN_ERROR, reported.
 */
static int find_preload(char *out, size_t size)
{
	const char *path = getenv("UZSWAP_PRELOAD");
	char cwd[PATH_MAX];
	struct stat st;

	if (!path || !*path)
		path = UZSWAP_PRELOAD_PATH;
	if (stat(path, &st))
		return fail(UZSWAP_RUN_ERROR, "the preload library %s: %s: "
			    "install it (it comes with uzswap), or name it in "
			    "UZSWAP_PRELOAD", path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail(UZSWAP_RUN_ERROR, "the preload library %s is not "
			    "a file: name the library in UZSWAP_PRELOAD", path);
	if (strpbrk(path, ": \t\n"))
		return fail(UZSWAP_RUN_ERROR, "the preload library %s cannot "
			    "go into LD_PRELOAD, whose entries ':' and blanks "
			    "separate: move it", path);
	if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
		return fail(UZSWAP_RUN_ERROR, "the preload library %s: cannot "
			    "tell the current directory: %s; give its full "
			    "path", path, strerror(errno));
	if ((size_t)snprintf(out, size, "%s%s%s", path[0] == '/' ? "" : cwd,
			     path[0] == '/' ? "" : "/", path) >= size)
		return fail(UZSWAP_RUN_ERROR, "the preload library %s: path "
			    "too long", path);
	return 0;
}

/* setenv(@name, @value), or report why not. Return: 0 or
 * UZSWAP_RUN_ERROR. */
static int set_var(const char *name, const char *value)
{
	if (!setenv(name, value, 1))
		return 0;
	return fail(UZSWAP_RUN_ERROR, "cannot set %s: %s", name,
		    strerror(errno));
}

/* The environment of the contract (see the top of the file), with
 * @preload prepended to LD_PRELOAD. Return: 0 or UZSWAP_RUN_ERROR. */
static int set_environment(const struct run_opts *o, const char *preload)
{
	const char *old = getenv("LD_PRELOAD");
	char *list;
	int ret;

	if (old && *old) {
		if (asprintf(&list, "%s:%s", preload, old) < 0)
			return fail(UZSWAP_RUN_ERROR, "cannot set LD_PRELOAD: "
				    "%s", strerror(errno));
		ret = set_var("LD_PRELOAD", list);
		free(list);
	} else {
		ret = set_var("LD_PRELOAD", preload);
	}
	if (!ret && o->limit)
		ret = set_var("UZSWAP_LIMIT", o->limit);
	if (!ret && o->socket)
		ret = set_var("UZSWAP_SOCKET", o->socket);
	if (!ret && o->name)
		ret = set_var("UZSWAP_NAME", o->name);
	if (!ret && o->require)
		ret = set_var("UZSWAP_REQUIRE", "1");
	if (!ret)
		ret = set_var("PYTHONMALLOC", "malloc");
	return ret;
}

/*****************
 * Arguments
 *****************/

/* A budget as the library reads it: size_parse() syntax, 1M or more. */
static bool valid_limit(const char *s)
{
	uint64_t v;

	return !size_parse(s, 0, &v) && v >= MIN_LIMIT;
}

/* The values given must be good ones, and so must an inherited
 * UZSWAP_LIMIT that the library would read. Return: 0 or
 * UZSWAP_RUN_ERROR, reported. */
static int check_opts(const struct run_opts *o)
{
	const char *inherited = getenv("UZSWAP_LIMIT");

	if (o->limit && !valid_limit(o->limit))
		return usage_error("--limit '%s' is not a budget (1M or more, "
				   "like 512M or 2G)", o->limit);
	if (!o->limit && inherited && !valid_limit(inherited))
		return fail(UZSWAP_RUN_ERROR, "UZSWAP_LIMIT='%s' in the "
			    "environment is not a budget (1M or more, like "
			    "512M or 2G): fix it, or give --limit", inherited);
	if (o->socket && !*o->socket)
		return usage_error("--socket needs a path");
	if (o->name && !*o->name)
		return usage_error("--name needs a name");
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: uzswap-run [OPTIONS] [--] PROGRAM [ARGS...]\n"
		"Run PROGRAM with its malloc heap managed by uzswapd, the "
		"user-space\ncompressed swap daemon (through the preload "
		"library\n" UZSWAP_PRELOAD_PATH ").\n\n"
		"Options (they end at PROGRAM):\n"
		"  -l, --limit SIZE   its resident budget, like 512M or 2G "
		"(default:\n"
		"                     the daemon's default-limit)\n"
		"  -s, --socket PATH  the daemon's socket (default: "
		"$UZSWAP_SOCKET,\n"
		"                     else " UZSWAP_DEFAULT_SOCKET ")\n"
		"  -n, --name NAME    its heap region's name, shown by "
		"uzswapctl\n"
		"                     (default: PROGRAM's file name)\n"
		"  -r, --require      refuse to run PROGRAM unmanaged when "
		"the daemon\n"
		"                     cannot be reached (default: run it "
		"with a warning)\n"
		"  -h, --help         this text\n"
		"  -V, --version      uzswap-run's version\n\n"
		"Exit status: PROGRAM's own; else 121 the daemon cannot be "
		"reached\n(--require), 122 the preload library cannot reach "
		"PROGRAM (static,\nsetuid, Go, ...), 125 uzswap-run's own "
		"error, 126 PROGRAM cannot be\nexecuted, 127 PROGRAM not "
		"found.\n");
}

/* Parse the command line into @o. Return: 0, -1 when done (--help,
 * --version), or UZSWAP_RUN_ERROR, reported. */
static int parse_args(int argc, char **argv, struct run_opts *o)
{
	static const struct option longopts[] = {
		{ "limit", required_argument, NULL, 'l' },
		{ "socket", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },
		{ "require", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	opterr = 0;	/* one line of ours instead of getopt's */
	/* "+": options end at PROGRAM, whose own arguments follow */
	/* ":": a missing value is told apart from an unknown option */
	while ((opt = getopt_long(argc, argv, "+:l:s:n:rhV", longopts,
				  NULL)) != -1) {
		switch (opt) {
		case 'l':
			o->limit = optarg;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'n':
			o->name = optarg;
			break;
		case 'r':
			o->require = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		case 'V':
			printf("uzswap-run %s\n", PACKAGE_VERSION);
			return -1;
		case ':':
			return usage_error("%s needs a value",
					   argv[optind - 1]);
		default:
			if (optopt)
				return usage_error("unknown option '-%c'",
						   optopt);
			return usage_error("unknown option '%s'",
					   argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return usage_error("no program given");
	o->argv = argv + optind;
	return check_opts(o);
}

/*****************
 * Main
 *****************/

/* Exec @path (found for argv[0]) as execvp() would, or report why not. */
static int exec_program(const char *path, char **argv)
{
	execvp(path, argv);
	if (errno == ENOENT)	/* the file is there: what it names is not */
		return fail(UZSWAP_RUN_NOT_FOUND, "%s: cannot execute: the "
			    "interpreter or loader it names does not exist",
			    argv[0]);
	return fail(UZSWAP_RUN_CANNOT_EXEC, "%s: cannot execute: %s",
		    argv[0], strerror(errno));
}

int main(int argc, char **argv)
{
	char preload[PATH_MAX], path[PATH_MAX];
	struct run_opts o = { .require = false };
	int ret;

	ret = parse_args(argc, argv, &o);
	if (ret)
		return ret < 0 ? EXIT_SUCCESS : ret;
	ret = find_preload(preload, sizeof(preload));
	if (ret)
		return ret;
	ret = find_program(o.argv[0], path, sizeof(path));
	if (ret == -ENOENT || ret == -ENOTDIR)
		return fail(UZSWAP_RUN_NOT_FOUND, "%s: not found%s: check its "
			    "name, or give its path", o.argv[0],
			    strchr(o.argv[0], '/') ? "" : " in $PATH");
	if (ret)
		return fail(ret == -ENAMETOOLONG ? UZSWAP_RUN_NOT_FOUND :
			    UZSWAP_RUN_CANNOT_EXEC, "%s: cannot execute: %s",
			    o.argv[0], strerror(-ret));
	ret = check_program(o.argv[0], path);
	if (ret)
		return ret;
	if (o.require) {
		ret = check_daemon(&o);
		if (ret)
			return ret;
	}
	ret = set_environment(&o, preload);
	if (ret)
		return ret;
	return exec_program(path, o.argv);
}
