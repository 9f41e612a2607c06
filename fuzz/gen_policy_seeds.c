/* SPDX-License-Identifier: MIT */
/* gen_policy_seeds.c — writes the seeds of fuzz_policy_load: for each of its six agent
 * configurations, [config byte][the file mm_policy_save writes for that agent] (the path
 * loader), and [config byte + 6][a training checkpoint from mm_policy_save_mem after a few
 * steps] (the memory loader). Reuses the target's own make_policy so seeds and target always
 * agree. Run by `make fuzz-seeds`. */
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
        if (actions(p, act) != MM_OK) abort(); /* the agent works before it is saved */
        if (mm_policy_save(p, tmp_path(0)) != MM_OK || !(in = fopen(tmp_path(0), "rb"))) return 1;
        buf[0] = (uint8_t)c;
        n = fread(buf + 1, 1, sizeof buf - 1, in);
        fclose(in);
        unlink(tmp_path(0));
        snprintf(path, sizeof path, "%s/algo%d", argv[1], (int)g_algo[c]);
        if (!write_file(path, buf, n + 1)) return 1;
        for (int mode = 2; mode <= 3; mode++) { /* the same file for the callback and create */
            buf[0] = (uint8_t)(c + mode * N_CONFIGS);
            snprintf(path, sizeof path, "%s/%s_algo%d", argv[1], mode == 2 ? "cb" : "new",
                     (int)g_algo[c]);
            if (!write_file(path, buf, n + 1)) return 1;
        }
        for (int s = 0; s < 6; s++) { /* some replay / rollout and optimizer state */
            static const float obs[6] = {0.1f, -0.2f, 0.3f, 1.0f, 0.5f, -1.5f};
            const float rew[2] = {1.0f, -0.5f};
            const uint8_t z[2] = {0, 0};
            float a[4];
            int32_t did;
            if (mm_policy_act(p, obs, 2, a, 1) != MM_OK ||
                mm_policy_observe(p, obs, a, rew, obs, z, z, 2) != MM_OK ||
                mm_policy_update(p, &did) != MM_OK)
                return 1;
        }
        buf[0] = (uint8_t)(c + N_CONFIGS);
        if (mm_policy_save_mem(p, buf + 1, sizeof buf - 1, &n, MM_POLICY_SAVE_CHECKPOINT) != MM_OK)
            return 1;
        snprintf(path, sizeof path, "%s/ckpt_algo%d", argv[1], (int)g_algo[c]);
        if (!write_file(path, buf, n + 1)) return 1;
        mm_policy_free(p);
    }
    return 0;
}
