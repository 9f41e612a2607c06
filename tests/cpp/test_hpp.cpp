/* SPDX-License-Identifier: MIT */
/* test_hpp.cpp — include/mm.hpp against the C API it wraps: every owner is created, moved and
 * freed; an error path per owner throws mm::error with the C call's status and the handle's
 * message; one real computation per handle kind gives exactly the C API's numbers.
 * Built as C++17 with -Wall -Wextra -Werror by `make check` (target check-cpp). */
#include "mm.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include <unistd.h>

static int g_pass, g_fail;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond) {                                                                                \
            g_pass++;                                                                              \
        } else {                                                                                   \
            g_fail++;                                                                              \
            std::printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                            \
        }                                                                                          \
    } while (0)

/* Runs f, which must throw mm::error with status st; returns the error's message(). */
template <class F> static std::string expect_error(F f, int st, const char *what)
{
    try {
        f();
    } catch (const mm::error &e) {
        if (e.status() != st)
            std::printf("  %s: status %s, expected %s\n", what, mm_status_name(e.status()),
                        mm_status_name(st));
        CHECK(e.status() == st);
        CHECK(std::string(e.what()).find(mm_status_name(st)) != std::string::npos);
        return e.message();
    }
    std::printf("  %s: no exception\n", what);
    CHECK(!"exception expected");
    return std::string();
}

static bool same(const float *a, const float *b, int64_t n)
{
    return std::memcmp(a, b, static_cast<size_t>(n) * sizeof(float)) == 0;
}

static void fill_pattern(float *p, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) p[i] = scale * std::sin(0.37f * static_cast<float>(i) + 0.1f);
}

template <class T> static void move_rules()
{
    static_assert(!std::is_copy_constructible<T>::value, "owners are not copyable");
    static_assert(!std::is_copy_assignable<T>::value, "owners are not copy-assignable");
    static_assert(std::is_nothrow_move_constructible<T>::value, "moves do not throw");
    static_assert(std::is_nothrow_move_assignable<T>::value, "moves do not throw");
    static_assert(std::is_nothrow_destructible<T>::value, "destructors do not throw");
}

static void test_span()
{
    std::vector<float> v(5, 1.0f);
    std::array<int32_t, 3> a = {{1, 2, 3}};
    float c[4] = {0, 1, 2, 3};
    mm::span<float> sv(v);
    mm::span<const float> cv = sv;
    mm::span<const int32_t> sa(a);
    mm::span<float> sc(c);
    CHECK(sv.size() == 5 && cv.data() == v.data() && sa.size() == 3 && sa[2] == 3);
    CHECK(sc.size() == 4 && sc[3] == 3.0f && !sc.empty() && mm::span<float>().empty());
    float sum = 0;
    for (float x : cv) sum += x;
    CHECK(sum == 5.0f);
}

static void test_tensor()
{
    move_rules<mm::tensor>();
    mm::tensor t({2, 3});
    CHECK(t.ndim() == 2 && t.dim(0) == 2 && t.dim(-1) == 3 && t.numel() == 6);
    CHECK(t.values().size() == 6 && t.shape() == std::vector<int64_t>({2, 3}));
    t.fill(2.5f);
    mm::tensor u({3, 2});
    u.reshape({2, 3});
    u.copy_from(t);
    CHECK(u.values()[5] == 2.5f);

    /* Error path: the exception carries the status and mm_tensor_errmsg of the C call. */
    std::string msg = expect_error([&] { t.reshape({4, 4}); }, MM_E_SHAPE, "reshape");
    mm_tensor *c = nullptr;
    int64_t shp[2] = {2, 3}, bad[2] = {4, 4};
    CHECK(mm_tensor_create(&c, 2, shp, nullptr) == MM_OK);
    CHECK(mm_tensor_reshape(c, 2, bad) == MM_E_SHAPE);
    CHECK(!msg.empty() && msg == mm_tensor_errmsg(c));
    mm_tensor_free(c);
    CHECK(t.numel() == 6); /* still usable */
    expect_error([&] { mm::tensor z({0}); }, MM_E_SHAPE, "zero dim");
    expect_error([&] { t.dim(5); }, MM_E_RANGE, "axis");

    /* wrap borrows; a short buffer is refused before the C call. */
    std::vector<float> buf(6, 1.0f);
    mm::tensor w = mm::tensor::wrap(buf, {3, 2});
    CHECK(w.data() == buf.data());
    expect_error([&] { mm::tensor::wrap(buf, {4, 2}); }, MM_E_SHAPE, "short wrap");

    /* Moves: the source is empty, the target owns; release hands the handle back. */
    mm_tensor *raw = t.get();
    mm::tensor m2(std::move(t));
    CHECK(!t && m2.get() == raw);
    mm::tensor m3;
    m3 = std::move(m2);
    CHECK(!m2 && m3.get() == raw);
    m3 = std::move(m3); /* self-move keeps the handle */
    CHECK(m3.get() == raw);
    mm_tensor *r = m3.release();
    CHECK(!m3 && r == raw);
    mm_tensor_free(r);
}

/* The same MLP built through both APIs must give bitwise equal outputs, gradients and steps. */
static void test_model()
{
    move_rules<mm::model>();
    mm_model_opts o = mm::model_opts(4);
    o.max_batch = 3;
    o.seed = 7;
    mm::model m(o);
    m.add_dense(8).add_activation(MM_ACT_TANH).add_dense(2).finalize();
    m.set_optimizer(MM_OPT_ADAM);
    m.set(MM_MODEL_LR, 1e-2);
    CHECK(m.get(MM_MODEL_LR) == 1e-2 && m.output_dim() == 2 && m.num_layers() == 3);
    CHECK(m.num_params() == 4 * 8 + 8 + 8 * 2 + 2 && m.params().size() == 58);

    mm_model *c = nullptr;
    CHECK(mm_model_create(&c, &o) == MM_OK);
    CHECK(mm_model_add_dense(c, 8, 1, MM_INIT_DEFAULT, 1.0) == MM_OK);
    CHECK(mm_model_add_activation(c, MM_ACT_TANH) == MM_OK);
    CHECK(mm_model_add_dense(c, 2, 1, MM_INIT_DEFAULT, 1.0) == MM_OK);
    CHECK(mm_model_finalize(c) == MM_OK);
    CHECK(mm_model_set_optimizer(c, MM_OPT_ADAM) == MM_OK);
    CHECK(mm_model_set_f64(c, MM_MODEL_LR, 1e-2) == MM_OK);

    mm::tensor x({3, 4}), y({3, 2}), dy({3, 2}), cy({3, 2});
    fill_pattern(x.data(), 12, 1.0f);
    fill_pattern(dy.data(), 6, 0.5f);
    m.forward(x, y);
    m.backward(dy);
    m.step();
    CHECK(mm_model_forward(c, x.get(), cy.get()) == MM_OK);
    CHECK(mm_model_backward(c, dy.get(), nullptr) == MM_OK);
    CHECK(mm_model_step(c) == MM_OK);
    CHECK(same(y.data(), cy.data(), 6));
    float *cp = nullptr;
    int64_t n = 0;
    CHECK(mm_model_params(c, &cp, &n) == MM_OK && n == 58);
    CHECK(same(m.params().data(), cp, n));

    /* infer with a caller workspace gives the forward's numbers. */
    std::vector<unsigned char> ws(m.infer_workspace_size(3) + 64);
    size_t off = (64 - reinterpret_cast<uintptr_t>(ws.data()) % 64) % 64;
    mm::tensor yi({3, 2});
    m.forward(x, y);
    m.infer(x, yi, mm::span<unsigned char>(ws.data() + off, ws.size() - off));
    CHECK(same(y.data(), yi.data(), 6));

    /* Save to memory and load back. */
    std::vector<unsigned char> file = m.save_mem();
    mm::model l = mm::model::load_mem(file);
    CHECK(l.num_params() == 58 && same(l.params().data(), m.params().data(), 58));

    /* Error paths: a bad forward keeps the handle's text; a bad create carries err_buf's. */
    mm::tensor xb({3, 5});
    std::string msg = expect_error([&] { m.forward(xb, y); }, MM_E_SHAPE, "forward shape");
    CHECK(mm_model_forward(c, xb.get(), cy.get()) == MM_E_SHAPE);
    CHECK(!msg.empty() && msg == mm_model_errmsg(c));
    m.forward(x, y); /* still usable */

    mm_model_opts bad = mm::model_opts(0);
    msg = expect_error([&] { mm::model z(bad); }, MM_E_INVALID_ARG, "create");
    char eb[256] = {0};
    mm_model *z = nullptr;
    bad.err_buf = eb;
    bad.err_buf_size = sizeof eb;
    CHECK(mm_model_create(&z, &bad) == MM_E_INVALID_ARG && z == nullptr);
    CHECK(!msg.empty() && msg == eb);
    eb[0] = 0; /* the caller's own err_buf is written and becomes the message */
    msg = expect_error([&] { mm::model z2(bad); }, MM_E_INVALID_ARG, "create own err_buf");
    CHECK(!msg.empty() && msg == eb);
    expect_error([&] { mm::model::load_mem(mm::span<const unsigned char>(file.data(), 10)); },
                 MM_E_FORMAT, "load truncated");

    mm::model moved(std::move(m));
    CHECK(!m && moved.num_params() == 58);
    mm_model_free(c);
}

/* Cross-attention through the wrapper: the same numbers as the C calls, and a missing context
 * is an exception with the handle's text. */
static void test_model_cross_attention()
{
    mm_model_opts o = mm::model_opts(4);
    o.max_batch = 2, o.max_seq = 3, o.seed = 9;
    mm::model m(o);
    m.add_cross_attention(2, 2, 5, 4).finalize();
    mm_model *c = nullptr;
    CHECK(mm_model_create(&c, &o) == MM_OK);
    CHECK(mm_model_add_cross_attention(c, 2, 2, 5, 4) == MM_OK);
    CHECK(mm_model_finalize(c) == MM_OK);
    mm::tensor x({2, 3, 4}), ctx({2, 4, 5}), y({2, 3, 4}), cy({2, 3, 4}), dy({2, 3, 4});
    mm::tensor dctx({2, 4, 5}), cdctx({2, 4, 5});
    fill_pattern(x.data(), 24, 1.0f);
    fill_pattern(ctx.data(), 40, 0.7f);
    fill_pattern(dy.data(), 24, 0.5f);
    m.forward(x, ctx, y);
    m.backward(dy, nullptr, &dctx);
    CHECK(mm_model_forward_ctx(c, x.get(), ctx.get(), cy.get()) == MM_OK);
    CHECK(mm_model_backward_ctx(c, dy.get(), nullptr, cdctx.get()) == MM_OK);
    CHECK(same(y.data(), cy.data(), 24) && same(dctx.data(), cdctx.data(), 40));
    std::string msg = expect_error([&] { m.forward(x, y); }, MM_E_INVALID_ARG, "no context");
    CHECK(msg.find("needs context tokens") != std::string::npos);
    mm_model_free(c);
}

static void test_attn()
{
    move_rules<mm::attn>();
    mm_attn_opts o = mm::attn_opts(MM_ATTN_SOFTMAX);
    o.d_head = 4;
    o.n_heads = 2;
    o.max_seq = 8;
    o.causal = 1;
    mm::attn a(o);
    mm_attn *c = nullptr;
    CHECK(mm_attn_create(&c, &o) == MM_OK);
    mm::tensor q({1, 2, 5, 4}), k({1, 2, 5, 4}), v({1, 2, 5, 4}), out({1, 2, 5, 4}),
        cout({1, 2, 5, 4}), dq({1, 2, 5, 4}), cdq({1, 2, 5, 4});
    fill_pattern(q.data(), 40, 1.0f);
    fill_pattern(k.data(), 40, -0.7f);
    fill_pattern(v.data(), 40, 0.3f);
    a.forward(q, k, v, out);
    a.backward(out, &dq, nullptr, nullptr);
    CHECK(mm_attn_forward(c, q.get(), k.get(), v.get(), cout.get()) == MM_OK);
    CHECK(mm_attn_backward(c, cout.get(), cdq.get(), nullptr, nullptr, nullptr) == MM_OK);
    CHECK(same(out.data(), cout.data(), 40) && same(dq.data(), cdq.data(), 40));
    double nz = 0;
    for (float f : out.values()) nz += std::fabs(f);
    CHECK(nz > 0);

    mm::tensor kb({1, 2, 5, 3});
    std::string msg = expect_error([&] { a.forward(q, kb, v, out); }, MM_E_SHAPE, "attn shape");
    CHECK(mm_attn_forward(c, q.get(), kb.get(), v.get(), cout.get()) == MM_E_SHAPE);
    CHECK(!msg.empty() && msg == mm_attn_errmsg(c));
    mm_attn_opts bad = o;
    bad.d_head = 0;
    expect_error([&] { mm::attn z(bad); }, MM_E_RANGE, "attn create");
    mm::attn b;
    b = std::move(a);
    CHECK(!a && b);
    mm_attn_free(c);

    /* RWKV-6 through the wrapper equals the C calls; a positive log-decay throws */
    mm_attn_opts ro = mm::attn_opts(MM_ATTN_RWKV6);
    ro.d_head = 4, ro.n_heads = 2, ro.max_seq = 8;
    mm::attn rw(ro);
    CHECK(mm_attn_create(&c, &ro) == MM_OK);
    mm::tensor w({1, 2, 5, 4}), u({2, 4}), du({2, 4}), cdu({2, 4});
    fill_pattern(w.data(), 40, -0.5f);
    for (float &f : w.values()) f = -std::fabs(f);
    fill_pattern(u.data(), 8, 0.2f);
    rw.forward_rwkv6(q, k, v, w, u, out);
    rw.backward_rwkv6(out, &dq, nullptr, nullptr, nullptr, &du);
    CHECK(mm_attn_forward_rwkv6(c, q.get(), k.get(), v.get(), w.get(), u.get(), cout.get()) ==
          MM_OK);
    CHECK(mm_attn_backward_rwkv6(c, cout.get(), cdq.get(), nullptr, nullptr, nullptr, cdu.get()) ==
          MM_OK);
    CHECK(same(out.data(), cout.data(), 40) && same(dq.data(), cdq.data(), 40) &&
          same(du.data(), cdu.data(), 8));
    w.data()[3] = 1.0f;
    expect_error([&] { rw.forward_rwkv6(q, k, v, w, u, out); }, MM_E_NUMERIC, "rwkv6 w");
    mm_attn_free(c);
}

static void test_ssm()
{
    move_rules<mm::ssm>();
    const int64_t H = 2, N = 4, L = 6;
    mm_ssm_opts o = mm::ssm_opts(MM_SSM_S4D);
    o.d_inner = H;
    o.d_state = N;
    o.max_seq = L;
    mm::ssm s(o);
    mm_ssm *c = nullptr;
    CHECK(mm_ssm_create(&c, &o) == MM_OK);
    mm::tensor log_dt({H}), ar({H, N / 2}), ai({H, N / 2}), cc({H, N / 2, 2}), k({H, L}),
        ck({H, L});
    CHECK(mm_ssm_s4d_init(1, H, N, ar.data(), ai.data()) == MM_OK);
    log_dt.fill(-2.0f);
    fill_pattern(cc.data(), cc.numel(), 0.5f);
    mm_ssm_inputs in = mm::ssm_inputs();
    in.log_dt = log_dt.get();
    in.A_real = ar.get();
    in.A_imag = ai.get();
    in.C = cc.get();
    s.kernel(in, k);
    CHECK(mm_ssm_kernel(c, &in, ck.get()) == MM_OK);
    CHECK(same(k.data(), ck.data(), H * L) && k.values()[0] != 0.0f);

    mm::tensor kb({H + 1, L});
    std::string msg = expect_error([&] { s.kernel(in, kb); }, MM_E_SHAPE, "ssm shape");
    CHECK(mm_ssm_kernel(c, &in, kb.get()) == MM_E_SHAPE);
    CHECK(!msg.empty() && msg == mm_ssm_errmsg(c));
    mm::ssm t(std::move(s));
    CHECK(!s && t.state().size() > 0);
    mm_ssm_free(c);
}

static void test_loss()
{
    move_rules<mm::loss>();
    mm_loss_opts o = mm::loss_opts(MM_LOSS_CROSS_ENTROPY);
    o.max_batch = 4;
    o.max_dim = 5;
    mm::loss l(o);
    l.set(MM_LOSS_LABEL_SMOOTHING, 0.1);
    mm_loss *c = nullptr;
    CHECK(mm_loss_create(&c, &o) == MM_OK);
    CHECK(mm_loss_set_f64(c, MM_LOSS_LABEL_SMOOTHING, 0.1) == MM_OK);
    mm::tensor z({3, 5}), dz({3, 5}), cdz({3, 5});
    fill_pattern(z.data(), 15, 2.0f);
    std::vector<int32_t> t = {1, 4, 0};
    double v = l.cross_entropy(z, t, &dz), cv = 0;
    CHECK(mm_loss_cross_entropy(c, z.get(), t.data(), 3, &cv, cdz.get()) == MM_OK);
    CHECK(v == cv && v > 0 && same(dz.data(), cdz.data(), 15));
    CHECK(l.get(MM_LOSS_STAT_LOSS) == v);

    std::vector<int32_t> tb = {1, 9, 0};
    std::string msg = expect_error([&] { l.cross_entropy(z, tb); }, MM_E_RANGE, "target");
    CHECK(mm_loss_cross_entropy(c, z.get(), tb.data(), 3, &cv, nullptr) == MM_E_RANGE);
    CHECK(!msg.empty() && msg == mm_loss_errmsg(c));
    expect_error([&] { l.set(MM_LOSS_LABEL_SMOOTHING, 2.0); }, MM_E_RANGE, "set");
    mm::loss m(std::move(l));
    CHECK(!l && m.get(MM_LOSS_LABEL_SMOOTHING) == 0.1);
    mm_loss_free(c);
}

static void test_policy()
{
    move_rules<mm::policy>();
    mm_policy_opts o = mm::policy_opts(MM_ALGO_PPO);
    o.obs_dim = 3;
    o.n_actions = 4;
    o.n_agents = 2;
    o.n_steps = 8;
    o.batch_size = 8;
    o.seed = 11;
    o.hidden[0] = o.hidden[1] = 16;
    mm::policy p(o);
    mm_policy *c = nullptr;
    CHECK(mm_policy_create(&c, &o) == MM_OK);
    std::array<float, 6> obs = {{0.1f, -0.2f, 0.3f, 0.5f, 0.0f, -1.0f}};
    std::array<float, 2> act{}, cact{};
    p.act(obs, 2, act, true);
    CHECK(mm_policy_act(c, obs.data(), 2, cact.data(), 1) == MM_OK);
    CHECK(act == cact && act[0] >= 0 && act[0] < 4);

    std::array<float, 2> rew = {{1.0f, 0.0f}};
    std::array<uint8_t, 2> term = {{0, 1}}, trunc = {{0, 0}};
    p.observe(obs, act, rew, obs, term, trunc, 2);
    CHECK(!p.update());
    CHECK(p.update_budget(1)); /* nothing due: no work left */
    expect_error([&] { p.update_budget(0); }, MM_E_INVALID_ARG, "zero budget");

    float nan_obs[6] = {NAN, 0, 0, 0, 0, 0};
    std::string msg = expect_error([&] { p.act(nan_obs, 2, act, false); }, MM_E_NUMERIC, "nan obs");
    CHECK(mm_policy_act(c, nan_obs, 2, cact.data(), 0) == MM_E_NUMERIC);
    CHECK(!msg.empty() && msg == mm_policy_errmsg(c));
    /* A span shorter than n rows is refused before the C call. */
    expect_error([&] { p.act(mm::span<const float>(obs.data(), 5), 2, act, false); }, MM_E_SHAPE,
                 "short obs");
    mm::policy q(std::move(p));
    CHECK(!p && q);
    q.act(obs, 2, act, false);
    mm_policy_free(c);
}

/* A one-rank communicator: the collectives are copies. */
static int32_t ar1(void *, float *, int64_t) { return 0; }
static int32_t ag1(void *, const float *s, float *r, int64_t n)
{
    std::memcpy(r, s, static_cast<size_t>(n) * sizeof(float));
    return 0;
}
static int32_t sr1(void *, const float *s, int32_t, float *r, int32_t, int64_t n)
{
    std::memcpy(r, s, static_cast<size_t>(n) * sizeof(float));
    return 0;
}

static void test_comm()
{
    move_rules<mm::comm>();
    mm_comm_callbacks cb;
    std::memset(&cb, 0, sizeof cb);
    cb.struct_size = sizeof cb;
    cb.rank = 0;
    cb.size = 1;
    cb.allreduce_sum = ar1;
    cb.allgather = ag1;
    cb.sendrecv = sr1;
    mm::comm cm(cb);
    CHECK(cm.rank() == 0 && cm.size() == 1);

    /* CLIP over a one-rank communicator (gathered path) equals the C call on the same setup. */
    mm_loss_opts o = mm::loss_opts(MM_LOSS_CLIP);
    o.max_batch = 4;
    o.max_dim = 3;
    mm::loss l(o);
    l.set_comm(&cm);
    mm_comm *cc = nullptr;
    mm_loss *c = nullptr;
    CHECK(mm_comm_create(&cc, &cb, nullptr) == MM_OK);
    CHECK(mm_loss_create(&c, &o) == MM_OK && mm_loss_set_comm(c, cc, 0) == MM_OK);
    mm::tensor x({4, 3}), y({4, 3}), dx({4, 3}), cdx({4, 3});
    fill_pattern(x.data(), 12, 1.0f);
    fill_pattern(y.data(), 12, -0.8f);
    double v = l.clip(x, y, &dx), cv = 0;
    CHECK(mm_loss_clip(c, x.get(), y.get(), &cv, cdx.get(), nullptr) == MM_OK);
    CHECK(v == cv && v > 0 && same(dx.data(), cdx.data(), 12));
    l.set_comm(nullptr);

    mm_comm_callbacks bad = cb;
    bad.size = 0;
    expect_error([&] { mm::comm z(bad); }, MM_E_INVALID_ARG, "comm create");
    mm::comm m(std::move(cm));
    CHECK(!cm && m.size() == 1);
    mm_loss_free(c);
    mm_comm_free(cc);
}

static void test_sgemm()
{
    std::array<float, 4> a = {{1, 2, 3, 4}}, c{};
    mm::sgemm(false, true, 2, 2, 2, 1.0f, a, 2, a, 2, 0.0f, c, 2);
    CHECK(c[0] == 5 && c[1] == 11 && c[2] == 11 && c[3] == 25);
    expect_error([&] { mm::sgemm(false, false, -1, 2, 2, 1.0f, a, 2, a, 2, 0.0f, c, 2); },
                 MM_E_SHAPE, "sgemm");
}

/* ---- the calls added after the first owners: each wrapper gives the C call's numbers ------- */

/* A read callback over a byte vector (mm_read_fn). */
struct byte_reader {
    const std::vector<unsigned char> *bytes;
    size_t off;
};
static int64_t read_bytes(void *ud, void *buf, int64_t n)
{
    byte_reader *r = static_cast<byte_reader *>(ud);
    size_t left = r->bytes->size() - r->off,
           k = static_cast<size_t>(n) < left ? static_cast<size_t>(n) : left;
    std::memcpy(buf, r->bytes->data() + r->off, k);
    r->off += k;
    return static_cast<int64_t>(k);
}

/* An MLP with 5 logits built through both APIs. */
static mm::model logits_model(mm_model **c)
{
    mm_model_opts o = mm::model_opts(4);
    o.max_batch = 3;
    o.seed = 5;
    mm::model m(o);
    m.add_dense(6).add_activation(MM_ACT_TANH).add_dense(5).finalize();
    CHECK(mm_model_create(c, &o) == MM_OK);
    CHECK(mm_model_add_dense(*c, 6, 1, MM_INIT_DEFAULT, 1.0) == MM_OK);
    CHECK(mm_model_add_activation(*c, MM_ACT_TANH) == MM_OK);
    CHECK(mm_model_add_dense(*c, 5, 1, MM_INIT_DEFAULT, 1.0) == MM_OK);
    CHECK(mm_model_finalize(*c) == MM_OK);
    return m;
}

static void test_model_more()
{
    mm_model *c = nullptr;
    mm::model m = logits_model(&c);
    /* jvp: the derivative of y along a direction v in parameter space */
    const int64_t np = m.num_params();
    mm::tensor x({3, 4}), v({np}), y({3, 5}), jy({3, 5}), cy({3, 5}), cjy({3, 5});
    fill_pattern(x.data(), 12, 1.0f);
    fill_pattern(v.data(), np, -0.3f);
    m.jvp(x, v, y, jy);
    CHECK(mm_model_jvp(c, x.get(), v.get(), cy.get(), cjy.get()) == MM_OK);
    CHECK(same(y.data(), cy.data(), 15) && same(jy.data(), cjy.data(), 15));

    /* log-probabilities and their backward */
    std::vector<int32_t> tg = {1, 4, -1};
    mm::tensor lp({3}), clp({3}), wts({3});
    wts.fill(1.0f);
    m.zero_grad();
    m.logprob(x, tg, lp);
    m.logprob_backward(tg, wts);
    CHECK(mm_model_zero_grad(c) == MM_OK);
    CHECK(mm_model_logprob(c, x.get(), tg.data(), 3, clp.get()) == MM_OK);
    CHECK(mm_model_logprob_backward(c, tg.data(), 3, wts.get()) == MM_OK);
    CHECK(same(lp.data(), clp.data(), 3) && lp.values()[0] < 0 && lp.values()[2] == 0.0f);
    float *cg = nullptr;
    int64_t ng = 0;
    CHECK(mm_model_grads(c, &cg, &ng) == MM_OK && same(m.grads().data(), cg, ng));
    std::vector<int32_t> tbad = {1, 9, 0};
    std::string msg = expect_error([&] { m.logprob(x, tbad, lp); }, MM_E_RANGE, "logprob target");
    CHECK(mm_model_logprob(c, x.get(), tbad.data(), 3, clp.get()) == MM_E_RANGE);
    CHECK(!msg.empty() && msg == mm_model_errmsg(c));

    /* sampling from the same seed draws the same tokens as C */
    std::array<int32_t, 3> tok{}, ctok{};
    std::array<float, 3> tlp{}, ctlp{};
    m.seed(42);
    m.sample(y, 1.0, 0, 1.0, tok, tlp);
    CHECK(mm_model_seed(c, 42) == MM_OK);
    CHECK(mm_model_sample(c, cy.get(), 1.0, 0, 1.0, ctok.data(), 3, ctlp.data()) == MM_OK);
    CHECK(tok == ctok && tlp == ctlp && tok[0] >= 0 && tok[0] < 5);
    expect_error([&] { m.sample(y, -1.0, 0, 1.0, tok); }, MM_E_RANGE, "temperature");
    expect_error([&] { m.sample(y, 1.0, 0, 1.0, tok, mm::span<float>(tlp.data(), 2)); }, MM_E_SHAPE,
                 "short logp");

    /* an MLP decodes without state, one step equals the forward */
    CHECK(m.decode_state_size(3) == 0);
    mm::tensor yd({3, 5});
    m.forward(x, y);
    m.decode_step(x, yd, mm::span<unsigned char>());
    CHECK(same(y.data(), yd.data(), 15));

    /* load through a read callback */
    std::vector<unsigned char> file = m.save_mem();
    byte_reader r = {&file, 0};
    mm::model l = mm::model::load_cb(read_bytes, &r);
    CHECK(l.num_params() == m.num_params() &&
          same(l.params().data(), m.params().data(), m.num_params()));
    std::vector<unsigned char> cut(file.begin(), file.begin() + 16);
    byte_reader rc = {&cut, 0};
    expect_error([&] { mm::model::load_cb(read_bytes, &rc); }, MM_E_FORMAT, "load_cb truncated");
    mm_model_free(c);
}

static void test_attn_projection()
{
    mm_attn_opts o = mm::attn_opts(MM_ATTN_PERFORMER);
    o.d_head = 4;
    o.n_features = 8;
    o.max_seq = 8;
    mm::attn a(o);
    mm::tensor w({8, 4}), w2({8, 4});
    a.get_projection(w);
    a.redraw();
    a.get_projection(w2);
    CHECK(!same(w.data(), w2.data(), 32));
    a.set_projection(w);
    a.get_projection(w2);
    CHECK(same(w.data(), w2.data(), 32));
    mm::tensor wb({4, 8});
    std::string msg = expect_error([&] { a.set_projection(wb); }, MM_E_SHAPE, "projection shape");
    CHECK(msg == a.errmsg());
    mm::attn sm(mm::attn_opts(MM_ATTN_SOFTMAX));
    expect_error([&] { sm.redraw(); }, MM_E_STATE, "redraw softmax");
}

static void test_ssm_more()
{
    const int64_t B = 1, H = 2, N = 4, L = 6;
    mm_ssm_opts o = mm::ssm_opts(MM_SSM_S4D);
    o.d_inner = H, o.d_state = N, o.max_seq = L;
    mm::ssm s(o);
    mm_ssm *c = nullptr;
    CHECK(mm_ssm_create(&c, &o) == MM_OK);
    mm::tensor u({B, H, L}), k({H, L}), d({H}), dy({B, H, L}), du({B, H, L}), dk({H, L}), dd({H});
    mm::tensor cdu({B, H, L}), cdk({H, L}), cdd({H});
    fill_pattern(u.data(), B * H * L, 1.0f);
    fill_pattern(k.data(), H * L, 0.4f);
    fill_pattern(d.data(), H, 0.9f);
    fill_pattern(dy.data(), B * H * L, -0.6f);
    s.conv_backward(u, k, &d, dy, &du, &dk, &dd);
    CHECK(mm_ssm_conv_backward(c, u.get(), k.get(), d.get(), dy.get(), cdu.get(), cdk.get(),
                               cdd.get()) == MM_OK);
    CHECK(same(du.data(), cdu.data(), B * H * L) && same(dk.data(), cdk.data(), H * L) &&
          same(dd.data(), cdd.data(), H));
    mm_ssm_free(c);

    /* LRU initialisation draws what C draws from the same seed; short spans are refused */
    mm_ssm_opts lo = mm::ssm_opts(MM_SSM_LRU);
    lo.d_inner = H, lo.d_state = N, lo.max_seq = L, lo.seed = 3;
    mm::ssm lru(lo);
    CHECK(mm_ssm_create(&c, &lo) == MM_OK);
    std::vector<float> nu(N), th(N), ga(N), bb(N * H * 2), cc(H * N * 2), dv(H);
    std::vector<float> cnu(N), cth(N), cga(N), cbb(N * H * 2), ccc(H * N * 2), cdv(H);
    lru.lru_init(0.5, 0.95, 6.28, nu, th, ga, bb, cc, dv);
    CHECK(mm_ssm_lru_init(c, 0.5, 0.95, 6.28, cnu.data(), cth.data(), cga.data(), cbb.data(),
                          ccc.data(), cdv.data()) == MM_OK);
    CHECK(nu == cnu && th == cth && ga == cga && bb == cbb && cc == ccc && dv == cdv && nu[0] != 0);
    expect_error([&] { lru.lru_init(0.5, 0.95, 6.28, mm::span<float>(nu.data(), N - 1), th, ga); },
                 MM_E_SHAPE, "short nu");
    expect_error([&] { lru.lru_init(0.9, 0.5, 6.28, nu, th, ga); }, MM_E_RANGE, "r_min > r_max");
    mm_ssm_free(c);
}

static void test_loss_more()
{
    /* Kimi length reward */
    mm::loss k(mm::loss_opts(MM_LOSS_KIMI));
    std::vector<int64_t> len = {10, 20, 30, 40};
    mm::tensor rw({4}), out({4});
    float r[4] = {1, 0, 1, 0};
    std::memcpy(rw.data(), r, sizeof r);
    k.kimi_length_reward(len, rw, 4, out);
    CHECK(out.values()[0] == 0.5f && out.values()[3] == -0.5f);
    expect_error([&] { k.kimi_length_reward(mm::span<const int64_t>(len.data(), 3), rw, 4, out); },
                 MM_E_SHAPE, "short lengths");
    expect_error([&] { k.kimi_length_reward(len, rw, 3, out); }, MM_E_SHAPE, "group size");

    /* FLIP masking: draw, gather, scatter equal the C calls from the same seed */
    mm_loss_opts fo = mm::loss_opts(MM_LOSS_CLIP);
    fo.max_batch = 2, fo.max_dim = 3, fo.seed = 4;
    mm::loss f(fo);
    mm_loss *c = nullptr;
    CHECK(mm_loss_create(&c, &fo) == MM_OK);
    std::array<int32_t, 4> keep{}, ckeep{};
    f.flip_draw(2, 5, 2, keep);
    CHECK(mm_loss_flip_draw(c, 2, 5, 2, ckeep.data()) == MM_OK);
    CHECK(keep == ckeep);
    mm::tensor x({2, 5, 3}), g({2, 2, 3}), dx({2, 5, 3});
    fill_pattern(x.data(), 30, 1.0f);
    f.flip_gather(x, keep, 2, g);
    CHECK(g.values()[0] == x.values()[static_cast<size_t>(keep[0]) * 3]);
    f.flip_scatter(g, keep, 2, dx);
    CHECK(dx.values()[static_cast<size_t>(keep[0]) * 3] == g.values()[0]);
    expect_error([&] { f.flip_gather(x, mm::span<const int32_t>(keep.data(), 3), 2, g); },
                 MM_E_SHAPE, "short keep");
    expect_error([&] { f.flip_draw(2, 5, 6, mm::span<int32_t>(keep.data(), 4)); }, MM_E_SHAPE,
                 "keep for n_keep 6");
    mm_loss_free(c);

    /* BLIP ITC and hard negatives */
    mm_loss_opts io = mm::loss_opts(MM_LOSS_ITC);
    io.max_batch = 3, io.max_dim = 4, io.seed = 2;
    mm::loss itc(io);
    CHECK(mm_loss_create(&c, &io) == MM_OK);
    mm::tensor im({3, 4}), tx({3, 4}), imm({3, 4}), txm({3, 4}), di({3, 4}), cdi({3, 4});
    fill_pattern(im.data(), 12, 0.5f);
    fill_pattern(tx.data(), 12, -0.4f);
    fill_pattern(imm.data(), 12, 0.45f);
    fill_pattern(txm.data(), 12, -0.35f);
    double v = itc.itc(im, tx, imm, txm, nullptr, nullptr, &di), cv = 0;
    CHECK(mm_loss_itc(c, im.get(), tx.get(), imm.get(), txm.get(), nullptr, nullptr, &cv, cdi.get(),
                      nullptr) == MM_OK);
    CHECK(v == cv && v > 0 && same(di.data(), cdi.data(), 12));
    mm::tensor sim({3, 3});
    fill_pattern(sim.data(), 9, 2.0f);
    std::array<int32_t, 3> neg{}, cneg{};
    itc.blip_hard_negatives(sim, mm::span<const int64_t>(), false, neg);
    CHECK(mm_loss_blip_hard_negatives(c, sim.get(), nullptr, 0, cneg.data()) == MM_OK);
    CHECK(neg == cneg && neg[0] != 0 && neg[1] != 1);
    expect_error(
        [&] {
            itc.blip_hard_negatives(sim, mm::span<const int64_t>(), false,
                                    mm::span<int32_t>(neg.data(), 2));
        },
        MM_E_SHAPE, "short neg");
    mm_loss_free(c);
}

static void test_policy_more()
{
    mm_policy_opts o = mm::policy_opts(MM_ALGO_PPO);
    o.obs_dim = 3;
    o.n_actions = 4;
    o.n_agents = 2;
    o.n_steps = 8;
    o.batch_size = 8;
    o.seed = 11;
    o.hidden[0] = o.hidden[1] = 16;
    mm::policy p(o);
    std::array<float, 6> obs = {{0.1f, -0.2f, 0.3f, 0.5f, 0.0f, -1.0f}};
    std::array<float, 2> act{}, act2{};
    p.act(obs, 2, act, false);

    /* the exported network's argmax is the greedy action */
    mm::model net = p.export_model();
    mm::tensor x = mm::tensor::wrap(obs, {2, 3}), y({2, 4});
    net.forward(x, y);
    for (int r = 0; r < 2; r++) {
        int best = 0;
        for (int j = 1; j < 4; j++)
            if (y.values()[static_cast<size_t>(r * 4 + j)] >
                y.values()[static_cast<size_t>(r * 4 + best)])
                best = j;
        CHECK(act[static_cast<size_t>(r)] == static_cast<float>(best));
    }
    p.export_copy(net);
    std::array<float, 3> mean{};
    std::array<float, 1> low{};
    mm_policy_export_info info = p.export_io(mean, mm::span<float>(), low);
    CHECK(info.output == MM_EXPORT_ARGMAX && info.obs_dim == 3 && info.model_out == 4 &&
          low[0] == -1.0f);
    expect_error([&] { p.export_io(mm::span<float>(mean.data(), 2)); }, MM_E_SHAPE, "short mean");

    /* bytes and files: a loaded copy acts the same */
    std::vector<unsigned char> bytes = p.save_mem();
    mm::policy q(o);
    q.load_mem(bytes);
    q.act(obs, 2, act2, false);
    CHECK(act == act2);
    byte_reader r = {&bytes, 0};
    mm::policy q2(o);
    q2.load_cb(read_bytes, &r);
    q2.act(obs, 2, act2, false);
    CHECK(act == act2);
    char path[] = "/tmp/libmm_hpp_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    p.save(path, MM_POLICY_SAVE_CHECKPOINT);
    mm::policy n = mm::policy::load_new(path, &o);
    n.act(obs, 2, act2, false);
    CHECK(act == act2);
    p.save(std::string(path));
    mm::policy n2 = mm::policy::load_new(path); /* defaults: one agent */
    n2.act(obs, 1, act2, false);
    CHECK(act[0] == act2[0]);
    expect_error([&] { n2.act(mm::span<const float>(obs.data(), 2), 1, act2, false); }, MM_E_SHAPE,
                 "spans sized from the file");
    std::remove(path);
    expect_error([&] { mm::policy::load_new(path); }, MM_E_IO, "load_new missing");
    p.reset_agent(1);
    std::string msg = expect_error([&] { p.reset_agent(2); }, MM_E_RANGE, "reset_agent");
    CHECK(msg == p.errmsg());
    expect_error([&] { q.load_mem(mm::span<const unsigned char>(bytes.data(), 8)); }, MM_E_FORMAT,
                 "load_mem truncated");
}

static void test_threads()
{
    move_rules<mm::threads>();
    mm::threads pool(2);
    CHECK(pool && mm::sgemm_mt_workspace_size(2) > 0 && mm::sgemm_workspace_size() > 0);
    const int64_t n = 96;
    std::vector<float> a(n * n), b(n * n), c1(n * n), c2(n * n);
    fill_pattern(a.data(), n * n, 1.0f);
    fill_pattern(b.data(), n * n, -0.5f);
    mm::sgemm_mt(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c1, n, &pool);
    mm::sgemm(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c2, n);
    /* mm_sgemm may run OpenBLAS (WITH_OPENBLAS=1) while mm_sgemm_mt always runs libmm's kernel,
     * so the two agree to rounding, not bitwise (k = 96 products of unit-scale values). */
    float worst = 0.0f, scale = 0.0f;
    for (size_t i = 0; i < c1.size(); i++) {
        worst = std::max(worst, std::fabs(c1[i] - c2[i]));
        scale = std::max(scale, std::fabs(c2[i]));
    }
    CHECK(worst <= 1e-5f * scale);
    mm::sgemm_mt(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c2, n); /* no pool: bitwise */
    CHECK(c1 == c2);
    std::vector<unsigned char> tiny(64);
    expect_error(
        [&] { mm::sgemm_mt(false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c2, n, &pool, tiny); },
        MM_E_INVALID_ARG, "small workspace");
    expect_error([&] { mm::threads z(0); }, MM_E_RANGE, "zero threads");
    mm::threads moved(std::move(pool));
    CHECK(!pool && moved);
}

static void test_free_functions()
{
    CHECK(mm::version_number() == mm_version_number() && mm::abi_version() == MM_ABI_VERSION);
    CHECK(std::string(mm::build_info()) == mm_build_info());
    std::vector<double> A(16), Bv(4), cA(16), cB(4), P(4), cP(4);
    mm::hippo(MM_HIPPO_LEGS, 4, A, Bv);
    CHECK(mm_hippo(MM_HIPPO_LEGS, 4, cA.data(), cB.data()) == MM_OK && A == cA && Bv == cB);
    mm::hippo_rank_correction(MM_HIPPO_LEGS, 4, 1, P);
    CHECK(mm_hippo_rank_correction(MM_HIPPO_LEGS, 4, 1, cP.data(), nullptr) == MM_OK && P == cP);
    expect_error([&] { mm::hippo(MM_HIPPO_LEGS, 4, mm::span<double>(A.data(), 15)); }, MM_E_SHAPE,
                 "short A");
    expect_error([&] { mm::hippo(MM_HIPPO_FOUT, 3, A); }, MM_E_RANGE, "odd FOUT");
    std::vector<float> ar(4), ai(4), car(4), cai(4);
    mm::s4d_init(MM_S4D_LIN, 2, 4, ar, ai);
    CHECK(mm_ssm_s4d_init(MM_S4D_LIN, 2, 4, car.data(), cai.data()) == MM_OK && ar == car &&
          ai == cai);
    std::vector<double> ad(16), bd(4), cad(16), cbd(4);
    mm::discretize(MM_DISC_ZOH, 0, 4, A, Bv, 0.1, ad, bd);
    CHECK(mm_ssm_discretize(MM_DISC_ZOH, 0, 4, A.data(), Bv.data(), 0.1, cad.data(), cbd.data(),
                            nullptr) == MM_OK);
    CHECK(ad == cad && bd == cbd);
    expect_error([&] { mm::discretize(MM_DISC_ZOH, 0, 4, A, Bv, -1.0, ad, bd); }, MM_E_RANGE, "dt");
}

int main()
{
    struct {
        const char *name;
        void (*fn)();
    } suites[] = {{"span", test_span},
                  {"tensor", test_tensor},
                  {"model", test_model},
                  {"model_cross_attention", test_model_cross_attention},
                  {"attn", test_attn},
                  {"ssm", test_ssm},
                  {"loss", test_loss},
                  {"policy", test_policy},
                  {"comm", test_comm},
                  {"sgemm", test_sgemm},
                  {"model_more", test_model_more},
                  {"attn_projection", test_attn_projection},
                  {"ssm_more", test_ssm_more},
                  {"loss_more", test_loss_more},
                  {"policy_more", test_policy_more},
                  {"threads", test_threads},
                  {"free_functions", test_free_functions}};
    for (auto &s : suites) {
        int before = g_fail;
        try {
            s.fn();
        } catch (const std::exception &e) {
            g_fail++;
            std::printf("FAIL %s: unexpected exception: %s\n", s.name, e.what());
        }
        if (g_fail != before) std::printf("FAIL suite %s\n", s.name);
    }
    std::printf("mm.hpp (C++17): %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
