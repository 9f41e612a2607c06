/* SPDX-License-Identifier: MIT */
/* gen_policy_seeds.c — writes the seeds of fuzz_policy_load: for each of its six agent
 * configurations, [config byte][the file mm_policy_save writes for that agent]. Reuses the
 * target's own make_policy so seeds and target always agree. Run by `make fuzz-seeds`. */
#include "fuzz_policy_load.c"

int main(int argc, char **argv)
{
    static uint8_t buf[1 << 20];
    char path[512];
    if (argc != 2) return 2;
    for (int c = 0; c < N_CONFIGS; c++) {
        mm_policy *p = make_policy(c);
        float act[4];
        FILE *in;
        size_t n;
        actions(p, act); /* the agent works before it is saved */
        if (mm_policy_save(p, tmp_path(0)) != MM_OK || !(in = fopen(tmp_path(0), "rb"))) return 1;
        buf[0] = (uint8_t)c;
        n = fread(buf + 1, 1, sizeof buf - 1, in);
        fclose(in);
        unlink(tmp_path(0));
        snprintf(path, sizeof path, "%s/algo%d", argv[1], (int)g_algo[c]);
        if (!write_file(path, buf, n + 1)) return 1;
        mm_policy_free(p);
    }
    return 0;
}
