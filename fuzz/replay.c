/* SPDX-License-Identifier: MIT */
/* replay.c — runs fuzz inputs through a target without libFuzzer (built with gcc and
 * ASan/UBSan by `make fuzz-replay`): every file in the directories (or files) given on the
 * command line is fed to LLVMFuzzerTestOneInput in a child process, so one crashing input is
 * counted and the rest still run. Ends with "N passed, N failed"; exit 1 on any failure. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int g_passed, g_failed;

static int run_child(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (!f) return 2;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return 2;
    }
    /* An exact-size heap copy, so ASan sees any read past the input's end. */
    buf = (uint8_t *)malloc(n ? (size_t)n : 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        return 2;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

static void run_one(const char *path)
{
    pid_t pid;
    int status = 0;
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) _exit(run_child(path));
    if (waitpid(pid, &status, 0) < 0) status = 1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        g_passed++;
    } else {
        g_failed++;
        printf("FAIL %s (%s %d)\n", path, WIFSIGNALED(status) ? "signal" : "exit",
               WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    }
}

static void run_path(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *de;
    char child[4096];
    if (stat(path, &st) != 0) return; /* a missing directory (no regressions yet) is fine */
    if (!S_ISDIR(st.st_mode)) {
        run_one(path);
        return;
    }
    if (!(d = opendir(path))) return;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue; /* ., .., .gitkeep */
        snprintf(child, sizeof child, "%s/%s", path, de->d_name);
        run_path(child);
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    const char *name = argc > 0 ? argv[0] : "replay";
    for (int i = 1; i < argc; i++) run_path(argv[i]);
    printf("%s: %d passed, %d failed\n", strrchr(name, '/') ? strrchr(name, '/') + 1 : name,
           g_passed, g_failed);
    return g_failed ? 1 : 0;
}
