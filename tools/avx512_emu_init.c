/* SPDX-License-Identifier: MIT */
/* avx512_emu_init.c — /init of the guest that tools/avx512_emu.sh boots under Bochs: prints
 * what the emulated CPU offers (mm_build_info), runs /runner with each line of /args as its
 * filter (MM_* variables from /env set first), prints one "avx512-emu: exit N" line the host
 * script reads, and powers the machine off. Linked statically with the tree's libmm objects;
 * the guest has no other program. */
#define _GNU_SOURCE
#include "mm.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* stdin/stdout/stderr on the console (the serial port): the kernel opens /dev/console for
 * init only when the archive has the node, so make it here when it does not. */
static void open_console(void)
{
    int fd;
    mkdir("/dev", 0755);
    if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) != 0)
        mknod("/dev/console", S_IFCHR | 0600, makedev(5, 1));
    fd = open("/dev/console", O_RDWR);
    if (fd < 0) return;
    for (int i = 0; i < 3; i++)
        if (fd != i) dup2(fd, i);
    if (fd > 2) close(fd);
}

/* KEY=VALUE lines of /env into the environment the runner inherits. */
static void load_env(void)
{
    char line[512];
    FILE *f = fopen("/env", "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strchr(line, '=')) putenv(strdup(line));
    }
    fclose(f);
}

/* The guest kernel's view of the CPU: the "flags" line of /proc/cpuinfo (avx512f, ...). */
static void print_cpu_flags(void)
{
    char line[4096];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "flags", 5) == 0) {
            printf("avx512-emu: cpu %s", line);
            break;
        }
    if (f) fclose(f);
}

/* One runner run; returns its exit status (128 + signal when killed). */
static int run_runner(const char *filter)
{
    int st;
    pid_t pid = fork();
    if (pid < 0) return 127;
    if (pid == 0) {
        char *argv[] = {"/runner", (char *)filter, NULL};
        if (!filter[0]) argv[1] = NULL;
        execv("/runner", argv);
        _exit(127);
    }
    while (waitpid(pid, &st, 0) < 0) {
    }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int main(void)
{
    char line[512];
    int status = 0;
    FILE *args;
    open_console();
    mkdir("/tmp", 01777);
    mkdir("/proc", 0555);
    mount("proc", "/proc", "proc", 0, NULL);
    load_env();
    setvbuf(stdout, NULL, _IOLBF, 0);
    print_cpu_flags();
    printf("avx512-emu: MM_SIMD=%s mm_build_info: %s\n", getenv("MM_SIMD") ? getenv("MM_SIMD") : "",
           mm_build_info());
    args = fopen("/args", "r");
    while (args && fgets(line, sizeof line, args)) {
        int rc;
        line[strcspn(line, "\n")] = '\0';
        printf("avx512-emu: runner %s\n", line[0] ? line : "(all tests)");
        rc = run_runner(line);
        printf("avx512-emu: runner %s exit %d\n", line[0] ? line : "(all tests)", rc);
        if (rc != 0 && status == 0) status = rc;
    }
    if (!args) status = 127;
    printf("avx512-emu: exit %d\n", status);
    fflush(stdout);
    tcdrain(1); /* the serial port's queue is lost at power off */
    sleep(1);
    sync();
    reboot(RB_POWER_OFF);
    for (;;) pause();
}
