/* SPDX-License-Identifier: MIT */
/*
 * mm.hpp — header-only C++ (C++17 or later) owners for libmm's handles.
 *
 * Every class here owns one C handle the way std::unique_ptr owns a pointer: movable, not
 * copyable, freed by its destructor; get() lends the raw handle to any mm_* call and release()
 * hands it back to the caller. A failing call throws mm::error, which carries the MM_E_* status
 * and, copied at the moment of the failure, the handle's mm_<object>_errmsg text (or a create
 * call's err_buf text). Nothing else is added: the numbers are the C library's (docs/CPP.md).
 *
 * Buffers are passed as mm::span<T>, a pointer and an element count (std::span is C++20); it is
 * built from a pointer and a size, a C array, or any contiguous container with data() and
 * size() (std::vector, std::array, std::string).
 *
 * Link as for mm.h (-lmm -lm -pthread, or pkg-config libmm); the header needs nothing else.
 */
#ifndef MM_HPP_6A1F
#define MM_HPP_6A1F

#include "mm.h"

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace mm
{

/* ---- span: a non-owning view of count elements at ptr ------------------------------------- */
template <class T> class span
{
  public:
    using element_type = T;
    using size_type = std::size_t;

    constexpr span() noexcept : p_(nullptr), n_(0) {}
    constexpr span(T *p, std::size_t n) noexcept : p_(p), n_(n) {}
    template <std::size_t N> constexpr span(T (&a)[N]) noexcept : p_(a), n_(N) {}
    /* Any contiguous container whose data() converts to T* (std::vector, std::array, ...). */
    template <class C, class = std::enable_if_t<
                           !std::is_same<std::decay_t<C>, span>::value &&
                           std::is_convertible<decltype(std::declval<C &>().data()), T *>::value>>
    constexpr span(C &c) noexcept : p_(c.data()), n_(static_cast<std::size_t>(c.size()))
    {
    }
    /* span<float> -> span<const float>. */
    template <class U, class = std::enable_if_t<!std::is_same<U, T>::value &&
                                                std::is_convertible<U *, T *>::value>>
    constexpr span(const span<U> &s) noexcept : p_(s.data()), n_(s.size())
    {
    }

    constexpr T *data() const noexcept { return p_; }
    constexpr std::size_t size() const noexcept { return n_; }
    constexpr bool empty() const noexcept { return n_ == 0; }
    constexpr T *begin() const noexcept { return p_; }
    constexpr T *end() const noexcept { return p_ + n_; }
    constexpr T &operator[](std::size_t i) const noexcept { return p_[i]; }

  private:
    T *p_;
    std::size_t n_;
};

/* ---- error: a failed call's status and detail text ------------------------------------------ */
class error : public std::runtime_error
{
  public:
    /* what() is "<call>: <MM_E_NAME>: <detail>" (": <detail>" omitted when there is none). */
    error(int status, const char *call, const char *detail)
        : std::runtime_error(compose(status, call, detail)), status_(status),
          detail_(detail ? detail : "")
    {
    }
    /* The MM_E_* code the C call returned. */
    int status() const noexcept { return status_; }
    /* The handle's mm_<object>_errmsg text at the failure ("" when the call has none). */
    const std::string &message() const noexcept { return detail_; }

  private:
    static std::string compose(int status, const char *call, const char *detail)
    {
        std::string s = call ? call : "libmm";
        s += ": ";
        s += mm_status_name(status);
        if (detail && *detail) {
            s += ": ";
            s += detail;
        }
        return s;
    }
    int status_;
    std::string detail_;
};

namespace detail
{
/* Throws for a negative status; detail is read now, before any later call can change it. */
inline void check(int status, const char *call, const char *detail = nullptr)
{
    if (status < 0) throw error(status, call, detail ? detail : mm_status_str(status));
}
inline int64_t to_i64(std::size_t n) noexcept { return static_cast<int64_t>(n); }
/* A create call's err_buf text, or the status text when the buffer is empty or unusable. */
inline const char *buf_text(const char *buf, std::size_t size, int status) noexcept
{
    return buf && size > 0 && buf[0] ? buf : mm_status_str(status);
}

/* The owning pointer every class below builds on: move-only, frees with Free. */
template <class H, void (*Free)(H *)> class owner
{
  public:
    owner() noexcept = default;
    explicit owner(H *h) noexcept : h_(h) {}
    owner(const owner &) = delete;
    owner &operator=(const owner &) = delete;
    owner(owner &&o) noexcept : h_(o.h_) { o.h_ = nullptr; }
    owner &operator=(owner &&o) noexcept
    {
        if (this != &o) {
            reset();
            h_ = o.h_;
            o.h_ = nullptr;
        }
        return *this;
    }
    ~owner() { reset(); }

    /* The C handle (still owned). */
    H *get() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != nullptr; }
    /* Gives up ownership: the caller frees the returned handle. */
    H *release() noexcept
    {
        H *h = h_;
        h_ = nullptr;
        return h;
    }
    /* Frees the handle now (if any) and takes h. */
    void reset(H *h = nullptr) noexcept
    {
        if (h_) Free(h_);
        h_ = h;
    }

  protected:
    H *h_ = nullptr;
};

/* Creates with an options struct whose err_buf this fills in when the caller left it unset. */
template <class H, class Opts, class Create>
H *create_with(const Opts &opts, Create create, const char *call)
{
    Opts o = opts;
    char buf[512] = {0};
    if (!o.err_buf) {
        o.err_buf = buf;
        o.err_buf_size = sizeof buf;
    }
    H *h = nullptr;
    int st = create(&h, &o);
    if (st < 0) throw error(st, call, detail::buf_text(o.err_buf, o.err_buf_size, st));
    return h;
}
} // namespace detail

/* ---- options with the library's defaults ---------------------------------------------------- */
inline mm_model_opts model_opts(int64_t input_dim)
{
    mm_model_opts o;
    detail::check(mm_model_opts_init(&o), "mm_model_opts_init");
    o.input_dim = input_dim;
    return o;
}
inline mm_attn_opts attn_opts(int32_t kind)
{
    mm_attn_opts o;
    detail::check(mm_attn_opts_init(&o, kind), "mm_attn_opts_init");
    return o;
}
inline mm_ssm_opts ssm_opts(int32_t kind)
{
    mm_ssm_opts o;
    detail::check(mm_ssm_opts_init(&o, kind), "mm_ssm_opts_init");
    return o;
}
inline mm_loss_opts loss_opts(int32_t kind)
{
    mm_loss_opts o;
    detail::check(mm_loss_opts_init(&o, kind), "mm_loss_opts_init");
    return o;
}
inline mm_policy_opts policy_opts(int32_t algo)
{
    mm_policy_opts o;
    detail::check(mm_policy_opts_init(&o, algo), "mm_policy_opts_init");
    return o;
}

/* ---- tensor --------------------------------------------------------------------------------- */
class tensor : public detail::owner<mm_tensor, mm_tensor_free>
{
  public:
    tensor() noexcept = default;
    explicit tensor(mm_tensor *t) noexcept : owner(t) {}
    /* A zero-filled tensor of this shape (mm_tensor_create). */
    explicit tensor(span<const int64_t> shape, const mm_allocator *alloc = nullptr)
    {
        mm_tensor *t = nullptr;
        detail::check(mm_tensor_create(&t, static_cast<int32_t>(shape.size()), shape.data(), alloc),
                      "mm_tensor_create");
        reset(t);
    }
    tensor(std::initializer_list<int64_t> shape, const mm_allocator *alloc = nullptr)
        : tensor(span<const int64_t>(shape.begin(), shape.size()), alloc)
    {
    }
    /* A tensor borrowing data (mm_tensor_wrap): data must outlive it and hold the shape's count. */
    static tensor wrap(span<float> data, span<const int64_t> shape,
                       const mm_allocator *alloc = nullptr)
    {
        int64_t count = 1;
        for (int64_t d : shape) count *= d;
        if (shape.empty() || count < 1 || static_cast<std::size_t>(count) > data.size())
            throw error(MM_E_SHAPE, "mm_tensor_wrap",
                        "the buffer holds fewer floats than the shape");
        mm_tensor *t = nullptr;
        detail::check(mm_tensor_wrap(&t, data.data(), static_cast<int32_t>(shape.size()),
                                     shape.data(), alloc),
                      "mm_tensor_wrap");
        return tensor(t);
    }
    static tensor wrap(span<float> data, std::initializer_list<int64_t> shape,
                       const mm_allocator *alloc = nullptr)
    {
        return wrap(data, span<const int64_t>(shape.begin(), shape.size()), alloc);
    }

    int32_t ndim() const noexcept { return mm_tensor_ndim(h_); }
    /* Size of axis (negative counts from the end); throws MM_E_RANGE for a bad axis. */
    int64_t dim(int32_t axis) const
    {
        int64_t d = mm_tensor_dim(h_, axis);
        detail::check(static_cast<int>(d < 0 ? d : 0), "mm_tensor_dim", errmsg());
        return d;
    }
    int64_t numel() const noexcept { return mm_tensor_numel(h_); }
    float *data() const noexcept { return mm_tensor_data(h_); }
    /* The elements as a span (empty for an empty owner). */
    span<float> values() const noexcept
    {
        return h_ ? span<float>(data(), static_cast<std::size_t>(numel())) : span<float>();
    }
    std::vector<int64_t> shape() const
    {
        std::vector<int64_t> s;
        for (int32_t i = 0; h_ && i < ndim(); i++) s.push_back(mm_tensor_dim(h_, i));
        return s;
    }
    void reshape(span<const int64_t> shape)
    {
        detail::check(mm_tensor_reshape(h_, static_cast<int32_t>(shape.size()), shape.data()),
                      "mm_tensor_reshape", errmsg());
    }
    void reshape(std::initializer_list<int64_t> shape)
    {
        reshape(span<const int64_t>(shape.begin(), shape.size()));
    }
    void fill(float v) { detail::check(mm_tensor_fill(h_, v), "mm_tensor_fill", errmsg()); }
    /* Copies src's elements into this tensor (same shape). */
    void copy_from(const tensor &src)
    {
        detail::check(mm_tensor_copy(h_, src.get()), "mm_tensor_copy", errmsg());
    }
    const char *errmsg() const noexcept { return mm_tensor_errmsg(h_); }
};

namespace detail
{
inline mm_tensor *raw(const tensor *t) noexcept { return t ? t->get() : nullptr; }
} // namespace detail

class comm;

/* ---- model ---------------------------------------------------------------------------------- */
class model : public detail::owner<mm_model, mm_model_free>
{
  public:
    model() noexcept = default;
    explicit model(mm_model *m) noexcept : owner(m) {}
    /* mm_model_create; create failures carry the err_buf text. */
    explicit model(const mm_model_opts &opts)
        : owner(detail::create_with<mm_model>(opts, mm_model_create, "mm_model_create"))
    {
    }
    static model load(const char *path, const mm_model_opts *opts = nullptr)
    {
        return model(load_with(
            opts, [&](mm_model **m, const mm_model_opts *o) { return mm_model_load(m, path, o); },
            "mm_model_load"));
    }
    static model load(const std::string &path, const mm_model_opts *opts = nullptr)
    {
        return load(path.c_str(), opts);
    }
    static model load_mem(span<const unsigned char> bytes, const mm_model_opts *opts = nullptr)
    {
        return model(load_with(
            opts,
            [&](mm_model **m, const mm_model_opts *o) {
                return mm_model_load_mem(m, bytes.data(), bytes.size(), o);
            },
            "mm_model_load_mem"));
    }

    /* Builders return *this so they chain: m.add_dense(64).add_activation(MM_ACT_TANH)... */
    model &add_dense(int64_t out_features, bool bias = true, int32_t init = MM_INIT_DEFAULT,
                     double gain = 1.0)
    {
        return ok(mm_model_add_dense(h_, out_features, bias ? 1 : 0, init, gain),
                  "mm_model_add_dense");
    }
    model &add_activation(int32_t kind)
    {
        return ok(mm_model_add_activation(h_, kind), "mm_model_add_activation");
    }
    model &add_layernorm(double eps = 1e-5, bool affine = true)
    {
        return ok(mm_model_add_layernorm(h_, eps, affine ? 1 : 0), "mm_model_add_layernorm");
    }
    model &add_rmsnorm(double eps, bool affine = true)
    {
        return ok(mm_model_add_rmsnorm(h_, eps, affine ? 1 : 0), "mm_model_add_rmsnorm");
    }
    model &add_embedding(int64_t num_embeddings, int64_t embedding_dim)
    {
        return ok(mm_model_add_embedding(h_, num_embeddings, embedding_dim),
                  "mm_model_add_embedding");
    }
    model &add_attention(const mm_attn_opts &opts)
    {
        return ok(mm_model_add_attention(h_, &opts), "mm_model_add_attention");
    }
    model &add_gau(int64_t expansion, int64_t qk_dim, bool causal, int64_t chunk)
    {
        return ok(mm_model_add_gau(h_, expansion, qk_dim, causal ? 1 : 0, chunk),
                  "mm_model_add_gau");
    }
    model &add_mamba(int64_t d_state, int64_t d_conv, int64_t expand, int64_t dt_rank = 0)
    {
        return ok(mm_model_add_mamba(h_, d_state, d_conv, expand, dt_rank), "mm_model_add_mamba");
    }
    model &add_s4d(int64_t d_state)
    {
        return ok(mm_model_add_s4d(h_, d_state), "mm_model_add_s4d");
    }
    /* Since 0.2: cross-attention to the context passed with forward(x, ctx, y). */
    model &add_cross_attention(int64_t n_heads, int64_t d_head, int64_t ctx_dim, int64_t max_ctx)
    {
        return ok(mm_model_add_cross_attention(h_, n_heads, d_head, ctx_dim, max_ctx),
                  "mm_model_add_cross_attention");
    }
    model &finalize() { return ok(mm_model_finalize(h_), "mm_model_finalize"); }

    void forward(const tensor &x, tensor &y)
    {
        ok(mm_model_forward(h_, x.get(), y.get()), "mm_model_forward");
    }
    /* dx may be nullptr (input gradient not needed). */
    void backward(const tensor &dy, tensor *dx = nullptr)
    {
        ok(mm_model_backward(h_, dy.get(), detail::raw(dx)), "mm_model_backward");
    }
    /* Since 0.2: with the context tokens of the cross-attention layers; dctx may be nullptr. */
    void forward(const tensor &x, const tensor &ctx, tensor &y)
    {
        ok(mm_model_forward_ctx(h_, x.get(), ctx.get(), y.get()), "mm_model_forward_ctx");
    }
    void backward(const tensor &dy, tensor *dx, tensor *dctx)
    {
        ok(mm_model_backward_ctx(h_, dy.get(), detail::raw(dx), detail::raw(dctx)),
           "mm_model_backward_ctx");
    }
    /* Since 0.2: reads a model file through a read callback (mm_model_load_cb). */
    static model load_cb(mm_read_fn fn, void *ud, const mm_model_opts *opts = nullptr)
    {
        return model(load_with(
            opts,
            [&](mm_model **m, const mm_model_opts *o) { return mm_model_load_cb(m, fn, ud, o); },
            "mm_model_load_cb"));
    }
    /* Forward-mode derivative: y = f(x) and jy = J_f(x) v (mm_model_jvp; with ctx,
     * mm_model_jvp_ctx). */
    void jvp(const tensor &x, const tensor &v, tensor &y, tensor &jy)
    {
        ok(mm_model_jvp(h_, x.get(), v.get(), y.get(), jy.get()), "mm_model_jvp");
    }
    void jvp(const tensor &x, const tensor &ctx, const tensor &v, tensor &y, tensor &jy)
    {
        ok(mm_model_jvp_ctx(h_, x.get(), ctx.get(), v.get(), y.get(), jy.get()),
           "mm_model_jvp_ctx");
    }
    /* Since 0.2: reseeds the RNG mm_model_sample draws from. */
    void seed(uint64_t s) { ok(mm_model_seed(h_, s), "mm_model_seed"); }
    /* Since 0.2: per-position log softmax(logits)[target] after a forward on x; targets holds
     * one entry per position (negative: skipped). */
    void logprob(const tensor &x, span<const int32_t> targets, tensor &logp)
    {
        ok(mm_model_logprob(h_, x.get(), targets.data(), detail::to_i64(targets.size()),
                            logp.get()),
           "mm_model_logprob");
    }
    /* Since 0.2: gradient of sum(weights * logp) into the model's gradients. */
    void logprob_backward(span<const int32_t> targets, const tensor &weights)
    {
        ok(mm_model_logprob_backward(h_, targets.data(), detail::to_i64(targets.size()),
                                     weights.get()),
           "mm_model_logprob_backward");
    }
    /* Since 0.2: one token per row of logits into tokens (one entry per row); logp, when not
     * empty, receives each token's log-probability and must hold as many entries. */
    void sample(const tensor &logits, double temperature, int64_t top_k, double top_p,
                span<int32_t> tokens, span<float> logp = span<float>())
    {
        if (!logp.empty() && logp.size() < tokens.size())
            throw error(MM_E_SHAPE, "mm_model_sample", "logp holds fewer entries than tokens");
        ok(mm_model_sample(h_, logits.get(), temperature, top_k, top_p, tokens.data(),
                           detail::to_i64(tokens.size()), logp.empty() ? nullptr : logp.data()),
           "mm_model_sample");
    }
    /* Token-by-token decoding: the bytes of the recurrent state for batch rows (0: none), and
     * one step with that state (8-byte aligned, zeroed to start a sequence; empty when 0). */
    std::size_t decode_state_size(int64_t batch) const
    {
        std::size_t b = 0;
        detail::check(mm_model_decode_state_size(h_, batch, &b), "mm_model_decode_state_size",
                      errmsg());
        return b;
    }
    void decode_step(const tensor &x, tensor &y, span<unsigned char> state)
    {
        ok(mm_model_decode_step(h_, x.get(), y.get(), state.empty() ? nullptr : state.data(),
                                state.size()),
           "mm_model_decode_step");
    }
    /* Thread-safe inference with a workspace the caller owns (see infer_workspace_size). */
    void infer(const tensor &x, tensor &y, span<unsigned char> ws) const
    {
        detail::check(mm_model_infer(h_, x.get(), y.get(), ws.data(), ws.size()), "mm_model_infer");
    }
    std::size_t infer_workspace_size(int64_t batch, int64_t seq = 1) const
    {
        std::size_t b = 0;
        detail::check(mm_model_infer_workspace_size(h_, batch, seq, &b),
                      "mm_model_infer_workspace_size", errmsg());
        return b;
    }
    int64_t num_params() const
    {
        int64_t n = 0;
        detail::check(mm_model_num_params(h_, &n), "mm_model_num_params", errmsg());
        return n;
    }
    int64_t output_dim() const
    {
        int64_t d = 0;
        detail::check(mm_model_output_dim(h_, &d), "mm_model_output_dim", errmsg());
        return d;
    }
    int32_t num_layers() const
    {
        int32_t n = 0;
        detail::check(mm_model_num_layers(h_, &n), "mm_model_num_layers", errmsg());
        return n;
    }
    /* Views into the model's flat parameter / gradient buffers (valid while the model lives). */
    span<float> params() { return flat(mm_model_params, "mm_model_params"); }
    span<float> grads() { return flat(mm_model_grads, "mm_model_grads"); }
    void zero_grad() { ok(mm_model_zero_grad(h_), "mm_model_zero_grad"); }
    void set_optimizer(int32_t kind)
    {
        ok(mm_model_set_optimizer(h_, kind), "mm_model_set_optimizer");
    }
    void set(int32_t id, double v) { ok(mm_model_set_f64(h_, id, v), "mm_model_set_f64"); }
    double get(int32_t id)
    {
        double v = 0;
        ok(mm_model_get_f64(h_, id, &v), "mm_model_get_f64");
        return v;
    }
    using owner::get;
    void step() { ok(mm_model_step(h_), "mm_model_step"); }
    void freeze(int32_t first, int32_t count, bool frozen = true)
    {
        ok(mm_model_freeze(h_, first, count, frozen ? 1 : 0), "mm_model_freeze");
    }
    void copy_from(const model &src, bool with_optimizer = false)
    {
        ok(mm_model_copy(h_, src.get(), with_optimizer ? 1 : 0), "mm_model_copy");
    }
    void lerp(const model &src, double tau)
    {
        ok(mm_model_lerp(h_, src.get(), tau), "mm_model_lerp");
    }
    void save(const char *path, uint32_t flags = 0)
    {
        ok(mm_model_save(h_, path, flags), "mm_model_save");
    }
    void save(const std::string &path, uint32_t flags = 0) { save(path.c_str(), flags); }
    /* The file's bytes (what save would write). */
    std::vector<unsigned char> save_mem(uint32_t flags = 0)
    {
        std::size_t n = 0;
        ok(mm_model_save_mem(h_, nullptr, 0, &n, flags), "mm_model_save_mem");
        std::vector<unsigned char> buf(n);
        ok(mm_model_save_mem(h_, buf.data(), buf.size(), &n, flags), "mm_model_save_mem");
        return buf;
    }
    /* Attaches (or with nullptr detaches) a communicator; it must outlive the attachment. */
    inline void set_comm(comm *c);
    const char *errmsg() const noexcept { return mm_model_errmsg(h_); }

  private:
    model &ok(int st, const char *call)
    {
        detail::check(st, call, errmsg());
        return *this;
    }
    span<float> flat(int (*fn)(mm_model *, float **, int64_t *), const char *call)
    {
        float *p = nullptr;
        int64_t n = 0;
        ok(fn(h_, &p, &n), call);
        return span<float>(p, static_cast<std::size_t>(n));
    }
    template <class F> static mm_model *load_with(const mm_model_opts *opts, F fn, const char *call)
    {
        mm_model_opts o;
        if (opts) {
            o = *opts;
        } else {
            detail::check(mm_model_opts_init(&o), "mm_model_opts_init");
        }
        char buf[512] = {0};
        if (!o.err_buf) {
            o.err_buf = buf;
            o.err_buf_size = sizeof buf;
        }
        mm_model *m = nullptr;
        int st = fn(&m, &o);
        if (st < 0) throw error(st, call, detail::buf_text(o.err_buf, o.err_buf_size, st));
        return m;
    }
};

/* ---- attn ----------------------------------------------------------------------------------- */
class attn : public detail::owner<mm_attn, mm_attn_free>
{
  public:
    attn() noexcept = default;
    explicit attn(mm_attn *h) noexcept : owner(h) {}
    explicit attn(const mm_attn_opts &opts)
        : owner(detail::create_with<mm_attn>(opts, mm_attn_create, "mm_attn_create"))
    {
    }
    void forward(const tensor &q, const tensor &k, const tensor &v, tensor &out)
    {
        ok(mm_attn_forward(h_, q.get(), k.get(), v.get(), out.get()), "mm_attn_forward");
    }
    void forward_gated(const tensor &q, const tensor &k, const tensor &v, const tensor &g,
                       tensor &out)
    {
        ok(mm_attn_forward_gated(h_, q.get(), k.get(), v.get(), g.get(), out.get()),
           "mm_attn_forward_gated");
    }
    /* Any gradient pointer may be nullptr (not computed). */
    void backward(const tensor &dout, tensor *dq, tensor *dk, tensor *dv, tensor *dg = nullptr)
    {
        ok(mm_attn_backward(h_, dout.get(), detail::raw(dq), detail::raw(dk), detail::raw(dv),
                            detail::raw(dg)),
           "mm_attn_backward");
    }
    void step(const tensor &q, const tensor &k, const tensor &v, tensor &out,
              const tensor *g = nullptr)
    {
        ok(mm_attn_step(h_, q.get(), k.get(), v.get(), detail::raw(g), out.get()), "mm_attn_step");
    }
    /* MM_ATTN_RWKV6 (Since 0.2): r in q's place, log-decays w, bonus u [H, d]. */
    void forward_rwkv6(const tensor &r, const tensor &k, const tensor &v, const tensor &w,
                       const tensor &u, tensor &out)
    {
        ok(mm_attn_forward_rwkv6(h_, r.get(), k.get(), v.get(), w.get(), u.get(), out.get()),
           "mm_attn_forward_rwkv6");
    }
    void backward_rwkv6(const tensor &dout, tensor *dr, tensor *dk, tensor *dv,
                        tensor *dw = nullptr, tensor *du = nullptr)
    {
        ok(mm_attn_backward_rwkv6(h_, dout.get(), detail::raw(dr), detail::raw(dk), detail::raw(dv),
                                  detail::raw(dw), detail::raw(du)),
           "mm_attn_backward_rwkv6");
    }
    void step_rwkv6(const tensor &r, const tensor &k, const tensor &v, const tensor &w,
                    const tensor &u, tensor &out)
    {
        ok(mm_attn_step_rwkv6(h_, r.get(), k.get(), v.get(), w.get(), u.get(), out.get()),
           "mm_attn_step_rwkv6");
    }
    void reset() { ok(mm_attn_reset(h_), "mm_attn_reset"); }
    /* PERFORMER: a new random projection; the projection W [n_features, d_head] out / in. */
    void redraw() { ok(mm_attn_redraw(h_), "mm_attn_redraw"); }
    void get_projection(tensor &w) const
    {
        detail::check(mm_attn_get_projection(h_, w.get()), "mm_attn_get_projection", errmsg());
    }
    void set_projection(const tensor &w)
    {
        ok(mm_attn_set_projection(h_, w.get()), "mm_attn_set_projection");
    }

    void set(int32_t id, double v) { ok(mm_attn_set_f64(h_, id, v), "mm_attn_set_f64"); }
    double get(int32_t id)
    {
        double v = 0;
        ok(mm_attn_get_f64(h_, id, &v), "mm_attn_get_f64");
        return v;
    }
    using owner::get;
    const char *errmsg() const noexcept { return mm_attn_errmsg(h_); }

  private:
    void ok(int st, const char *call) { detail::check(st, call, errmsg()); }
};

/* ---- ssm ------------------------------------------------------------------------------------ */
/* The inputs and gradients structs stay the C ones (fields point at mm_tensor handles: pass
 * t.get()); ssm_inputs() / ssm_grads() return them initialised. */
inline mm_ssm_inputs ssm_inputs()
{
    mm_ssm_inputs in;
    detail::check(mm_ssm_inputs_init(&in), "mm_ssm_inputs_init");
    return in;
}
inline mm_ssm_grads ssm_grads()
{
    mm_ssm_grads g;
    detail::check(mm_ssm_grads_init(&g), "mm_ssm_grads_init");
    return g;
}

class ssm : public detail::owner<mm_ssm, mm_ssm_free>
{
  public:
    ssm() noexcept = default;
    explicit ssm(mm_ssm *h) noexcept : owner(h) {}
    explicit ssm(const mm_ssm_opts &opts)
        : owner(detail::create_with<mm_ssm>(opts, mm_ssm_create, "mm_ssm_create")),
          h_dim_(opts.d_inner), n_(opts.d_state)
    {
    }
    void scan(const mm_ssm_inputs &in, tensor &out, tensor *last_state = nullptr)
    {
        ok(mm_ssm_scan(h_, &in, out.get(), detail::raw(last_state)), "mm_ssm_scan");
    }
    void scan_backward(const mm_ssm_inputs &in, const tensor &dout, mm_ssm_grads &g)
    {
        ok(mm_ssm_scan_backward(h_, &in, dout.get(), &g), "mm_ssm_scan_backward");
    }
    void kernel(const mm_ssm_inputs &in, tensor &k)
    {
        ok(mm_ssm_kernel(h_, &in, k.get()), "mm_ssm_kernel");
    }
    void kernel_backward(const mm_ssm_inputs &in, const tensor &dk, mm_ssm_grads &g)
    {
        ok(mm_ssm_kernel_backward(h_, &in, dk.get(), &g), "mm_ssm_kernel_backward");
    }
    void conv(const tensor &u, const tensor &k, const tensor *d, tensor &y)
    {
        ok(mm_ssm_conv(h_, u.get(), k.get(), detail::raw(d), y.get()), "mm_ssm_conv");
    }
    void step(const mm_ssm_inputs &in, tensor &out)
    {
        ok(mm_ssm_step(h_, &in, out.get()), "mm_ssm_step");
    }
    /* Backward of conv: du, dk, dd may each be nullptr (skipped). */
    void conv_backward(const tensor &u, const tensor &k, const tensor *d, const tensor &dy,
                       tensor *du, tensor *dk, tensor *dd = nullptr)
    {
        ok(mm_ssm_conv_backward(h_, u.get(), k.get(), detail::raw(d), dy.get(), detail::raw(du),
                                detail::raw(dk), detail::raw(dd)),
           "mm_ssm_conv_backward");
    }
    /* LRU initialisation from the handle's RNG (mm_ssm_lru_init): nu_log, theta_log,
     * gamma_log N floats, b N*H*2, c H*N*2, d H; an empty span is not drawn. Sizes are checked
     * when the owner was created from options (it knows H = d_inner and N = d_state). */
    void lru_init(double r_min, double r_max, double max_phase, span<float> nu_log,
                  span<float> theta_log, span<float> gamma_log, span<float> b = span<float>(),
                  span<float> c = span<float>(), span<float> d = span<float>())
    {
        const char *call = "mm_ssm_lru_init";
        const int64_t n = n_, hn2 = h_dim_ * n_ * 2;
        const span<float> *outs[6] = {&nu_log, &theta_log, &gamma_log, &b, &c, &d};
        const int64_t want[6] = {n, n, n, hn2, hn2, h_dim_};
        for (int i = 0; i < 6; i++)
            if (!outs[i]->empty() && outs[i]->size() < static_cast<std::size_t>(want[i]))
                throw error(MM_E_SHAPE, call, "an output span is shorter than its LRU shape");
        ok(mm_ssm_lru_init(h_, r_min, r_max, max_phase, opt(nu_log), opt(theta_log), opt(gamma_log),
                           opt(b), opt(c), opt(d)),
           call);
    }
    void reset() { ok(mm_ssm_reset(h_), "mm_ssm_reset"); }
    /* A view of the streaming state (valid while the handle lives). */
    span<float> state()
    {
        float *p = nullptr;
        int64_t n = 0;
        ok(mm_ssm_state(h_, &p, &n), "mm_ssm_state");
        return span<float>(p, static_cast<std::size_t>(n));
    }
    void set(int32_t id, double v) { ok(mm_ssm_set_f64(h_, id, v), "mm_ssm_set_f64"); }
    double get(int32_t id) const
    {
        double v = 0;
        detail::check(mm_ssm_get_f64(h_, id, &v), "mm_ssm_get_f64", errmsg());
        return v;
    }
    using owner::get;
    const char *errmsg() const noexcept { return mm_ssm_errmsg(h_); }

  private:
    void ok(int st, const char *call) { detail::check(st, call, errmsg()); }
    static float *opt(span<float> s) noexcept { return s.empty() ? nullptr : s.data(); }
    int64_t h_dim_ = 0, n_ = 0; /* d_inner and d_state when created from options, else 0 */
};

/* ---- loss ----------------------------------------------------------------------------------- */
class loss : public detail::owner<mm_loss, mm_loss_free>
{
  public:
    loss() noexcept = default;
    explicit loss(mm_loss *h) noexcept : owner(h) {}
    explicit loss(const mm_loss_opts &opts)
        : owner(detail::create_with<mm_loss>(opts, mm_loss_create, "mm_loss_create"))
    {
    }
    /* Each compute call returns the loss value; gradient pointers may be nullptr. */
    double clip(const tensor &x, const tensor &y, tensor *dx = nullptr, tensor *dy = nullptr)
    {
        double l = 0;
        ok(mm_loss_clip(h_, x.get(), y.get(), &l, detail::raw(dx), detail::raw(dy)),
           "mm_loss_clip");
        return l;
    }
    double siglip(const tensor &x, const tensor &y, tensor *dx = nullptr, tensor *dy = nullptr)
    {
        double l = 0;
        ok(mm_loss_siglip(h_, x.get(), y.get(), &l, detail::raw(dx), detail::raw(dy)),
           "mm_loss_siglip");
        return l;
    }
    double cross_entropy(const tensor &logits, span<const int32_t> targets,
                         tensor *dlogits = nullptr)
    {
        double l = 0;
        ok(mm_loss_cross_entropy(h_, logits.get(), targets.data(), detail::to_i64(targets.size()),
                                 &l, detail::raw(dlogits)),
           "mm_loss_cross_entropy");
        return l;
    }
    double bce(const tensor &logits, const tensor &targets, tensor *dlogits = nullptr)
    {
        double l = 0;
        ok(mm_loss_bce(h_, logits.get(), targets.get(), &l, detail::raw(dlogits)), "mm_loss_bce");
        return l;
    }
    double kimi(const tensor &logp, const tensor &logp_old, const tensor &rewards,
                tensor *dlogp = nullptr)
    {
        double l = 0;
        ok(mm_loss_kimi(h_, logp.get(), logp_old.get(), rewards.get(), &l, detail::raw(dlogp)),
           "mm_loss_kimi");
        return l;
    }
    /* BLIP ITC with momentum distillation; the queues are both nullptr or both given. */
    double itc(const tensor &img, const tensor &txt, const tensor &img_m, const tensor &txt_m,
               const tensor *img_queue = nullptr, const tensor *txt_queue = nullptr,
               tensor *d_img = nullptr, tensor *d_txt = nullptr)
    {
        double l = 0;
        ok(mm_loss_itc(h_, img.get(), txt.get(), img_m.get(), txt_m.get(), detail::raw(img_queue),
                       detail::raw(txt_queue), &l, detail::raw(d_img), detail::raw(d_txt)),
           "mm_loss_itc");
        return l;
    }
    /* BLIP hard negatives: one column (by_column: row) per row of sim [B, M] into neg (B
     * entries); ids empty or B labels. */
    void blip_hard_negatives(const tensor &sim, span<const int64_t> ids, bool by_column,
                             span<int32_t> neg)
    {
        int64_t b = sim.ndim() >= 1 ? sim.dim(0) : 0;
        if (static_cast<int64_t>(neg.size()) < b ||
            (!ids.empty() && static_cast<int64_t>(ids.size()) < b))
            throw error(MM_E_SHAPE, "mm_loss_blip_hard_negatives",
                        "neg or ids holds fewer than B entries");
        ok(mm_loss_blip_hard_negatives(h_, sim.get(), ids.empty() ? nullptr : ids.data(),
                                       by_column ? 1 : 0, neg.data()),
           "mm_loss_blip_hard_negatives");
    }
    /* FLIP masking: keep receives batch * n_keep patch indices; gather / scatter use them. */
    void flip_draw(int64_t batch, int64_t n_patches, int64_t n_keep, span<int32_t> keep)
    {
        if (batch < 0 || n_keep < 0 || keep.size() < static_cast<std::size_t>(batch * n_keep))
            throw error(MM_E_SHAPE, "mm_loss_flip_draw", "keep holds fewer than batch * n_keep");
        ok(mm_loss_flip_draw(h_, batch, n_patches, n_keep, keep.data()), "mm_loss_flip_draw");
    }
    void flip_gather(const tensor &x, span<const int32_t> keep, int64_t n_keep, tensor &out)
    {
        need_keep(x, keep, n_keep, "mm_loss_flip_gather");
        ok(mm_loss_flip_gather(h_, x.get(), keep.data(), n_keep, out.get()), "mm_loss_flip_gather");
    }
    void flip_scatter(const tensor &dout, span<const int32_t> keep, int64_t n_keep, tensor &dx)
    {
        need_keep(dout, keep, n_keep, "mm_loss_flip_scatter");
        ok(mm_loss_flip_scatter(h_, dout.get(), keep.data(), n_keep, dx.get()),
           "mm_loss_flip_scatter");
    }
    /* Kimi k1.5 length reward for groups of group_size responses (one length per reward). */
    void kimi_length_reward(span<const int64_t> lengths, const tensor &rewards, int64_t group_size,
                            tensor &out)
    {
        if (static_cast<int64_t>(lengths.size()) < rewards.numel())
            throw error(MM_E_SHAPE, "mm_loss_kimi_length_reward",
                        "lengths holds fewer entries than rewards");
        ok(mm_loss_kimi_length_reward(h_, lengths.data(), rewards.get(), group_size, out.get()),
           "mm_loss_kimi_length_reward");
    }
    void l2_normalize(const tensor &u, tensor &x)
    {
        ok(mm_loss_l2_normalize(h_, u.get(), x.get()), "mm_loss_l2_normalize");
    }
    void l2_normalize_backward(const tensor &u, const tensor &dx, tensor &du)
    {
        ok(mm_loss_l2_normalize_backward(h_, u.get(), dx.get(), du.get()),
           "mm_loss_l2_normalize_backward");
    }
    void set(int32_t id, double v) { ok(mm_loss_set_f64(h_, id, v), "mm_loss_set_f64"); }
    double get(int32_t id) const
    {
        double v = 0;
        detail::check(mm_loss_get_f64(h_, id, &v), "mm_loss_get_f64", errmsg());
        return v;
    }
    using owner::get;
    inline void set_comm(comm *c, uint32_t flags = 0);
    const char *errmsg() const noexcept { return mm_loss_errmsg(h_); }

  private:
    void ok(int st, const char *call) { detail::check(st, call, errmsg()); }
    /* keep must hold batch * n_keep indices, batch being x's first axis. */
    static void need_keep(const tensor &x, span<const int32_t> keep, int64_t n_keep,
                          const char *call)
    {
        int64_t b = x && x.ndim() >= 1 ? x.dim(0) : 0;
        if (n_keep >= 0 && keep.size() < static_cast<std::size_t>(b * n_keep))
            throw error(MM_E_SHAPE, call, "keep holds fewer than batch * n_keep indices");
    }
};

/* ---- policy --------------------------------------------------------------------------------- */
class policy : public detail::owner<mm_policy, mm_policy_free>
{
  public:
    policy() noexcept = default;
    /* Adopts p; obs_dim and act_width (1 for discrete actions) size the span checks. */
    policy(mm_policy *p, int64_t obs_dim, int64_t act_width) noexcept
        : owner(p), obs_dim_(obs_dim), act_width_(act_width)
    {
    }
    /* The wrapper remembers obs_dim, the action width and n_agents to check span sizes. */
    explicit policy(const mm_policy_opts &opts)
        : owner(detail::create_with<mm_policy>(opts, mm_policy_create, "mm_policy_create")),
          obs_dim_(opts.obs_dim), act_width_(opts.n_actions > 0 ? 1 : opts.act_dim)
    {
    }
    policy(policy &&) noexcept = default;
    policy &operator=(policy &&) noexcept = default;

    /* obs: n * obs_dim floats; actions: n * action width (1 for discrete) floats. */
    void act(span<const float> obs, int64_t n, span<float> actions, bool explore)
    {
        need(obs.size(), n * obs_dim_, "mm_policy_act", "obs");
        need(actions.size(), n * act_width_, "mm_policy_act", "actions");
        ok(mm_policy_act(h_, obs.data(), n, actions.data(), explore ? 1 : 0), "mm_policy_act");
    }
    void observe(span<const float> obs, span<const float> actions, span<const float> rewards,
                 span<const float> next_obs, span<const uint8_t> terminated,
                 span<const uint8_t> truncated, int64_t n)
    {
        const char *c = "mm_policy_observe";
        need(obs.size(), n * obs_dim_, c, "obs");
        need(next_obs.size(), n * obs_dim_, c, "next_obs");
        need(actions.size(), n * act_width_, c, "actions");
        need(rewards.size(), n, c, "rewards");
        need(terminated.size(), n, c, "terminated");
        need(truncated.size(), n, c, "truncated");
        ok(mm_policy_observe(h_, obs.data(), actions.data(), rewards.data(), next_obs.data(),
                             terminated.data(), truncated.data(), n),
           c);
    }
    /* Returns true when it trained. */
    bool update()
    {
        int32_t did = 0;
        ok(mm_policy_update(h_, &did), "mm_policy_update");
        return did != 0;
    }
    /* At most max_minibatches units of the due update (mm_policy_update_budget); returns true
     * when no update work is left. */
    bool update_budget(int64_t max_minibatches)
    {
        int32_t done = 0;
        ok(mm_policy_update_budget(h_, max_minibatches, &done), "mm_policy_update_budget");
        return done != 0;
    }
    void set(int32_t id, double v) { ok(mm_policy_set_f64(h_, id, v), "mm_policy_set_f64"); }
    double get(int32_t id)
    {
        double v = 0;
        ok(mm_policy_get_f64(h_, id, &v), "mm_policy_get_f64");
        return v;
    }
    using owner::get;
    void save(const std::string &path) { ok(mm_policy_save(h_, path.c_str()), "mm_policy_save"); }
    /* Since 0.2: a policy created from a file (mm_policy_load_new): algorithm, spaces and sizes
     * from the file, the other options from opts (nullptr: the file's algorithm's defaults). */
    static policy load_new(const std::string &path, const mm_policy_opts *opts = nullptr)
    {
        mm_policy *p = nullptr;
        if (opts) {
            p = detail::create_with<mm_policy>(
                *opts,
                [&](mm_policy **out, const mm_policy_opts *o) {
                    return mm_policy_load_new(out, path.c_str(), o);
                },
                "mm_policy_load_new");
        } else {
            detail::check(mm_policy_load_new(&p, path.c_str(), nullptr), "mm_policy_load_new");
        }
        mm_policy_export_info info;
        int st = mm_policy_export_io(p, &info, nullptr, nullptr, nullptr, nullptr);
        if (st < 0) {
            mm_policy_free(p);
            throw error(st, "mm_policy_export_io", mm_status_str(st));
        }
        return policy(p, info.obs_dim, info.output == MM_EXPORT_ARGMAX ? 1 : info.act_dim);
    }
    /* Since 0.2: the deployable network (mm_policy_export; named so because export is a C++
     * keyword), a refresh of one exported before, the same written as a model file, and the
     * constants around it. Each array given to export_io must hold obs_dim (mean, istd) or the
     * action width (low, high) floats; empty spans are not filled. */
    model export_model(const mm_model_opts *opts = nullptr)
    {
        mm_model *m = nullptr;
        ok(mm_policy_export(h_, &m, opts), "mm_policy_export");
        return model(m);
    }
    void export_copy(model &dst)
    {
        ok(mm_policy_export_copy(h_, dst.get()), "mm_policy_export_copy");
    }
    void export_save(const std::string &path)
    {
        ok(mm_policy_export_save(h_, path.c_str()), "mm_policy_export_save");
    }
    mm_policy_export_info export_io(span<float> obs_mean = span<float>(),
                                    span<float> obs_istd = span<float>(),
                                    span<float> act_low = span<float>(),
                                    span<float> act_high = span<float>()) const
    {
        const char *c = "mm_policy_export_io";
        if (!obs_mean.empty()) need(obs_mean.size(), obs_dim_, c, "obs_mean");
        if (!obs_istd.empty()) need(obs_istd.size(), obs_dim_, c, "obs_istd");
        if (!act_low.empty()) need(act_low.size(), act_width_, c, "act_low");
        if (!act_high.empty()) need(act_high.size(), act_width_, c, "act_high");
        mm_policy_export_info info;
        detail::check(mm_policy_export_io(h_, &info, opt(obs_mean), opt(obs_istd), opt(act_low),
                                          opt(act_high)),
                      c, errmsg());
        return info;
    }
    /* Since 0.2: agent i's episode state starts afresh (mm_policy_reset_agent). */
    void reset_agent(int64_t i) { ok(mm_policy_reset_agent(h_, i), "mm_policy_reset_agent"); }
    /* Since 0.2: save with flags (MM_POLICY_SAVE_*: a checkpoint), to a file or to bytes. */
    void save(const std::string &path, uint32_t flags)
    {
        ok(mm_policy_save_ex(h_, path.c_str(), flags), "mm_policy_save_ex");
    }
    std::vector<unsigned char> save_mem(uint32_t flags = 0)
    {
        std::size_t n = 0;
        ok(mm_policy_save_mem(h_, nullptr, 0, &n, flags), "mm_policy_save_mem");
        std::vector<unsigned char> buf(n);
        ok(mm_policy_save_mem(h_, buf.data(), buf.size(), &n, flags), "mm_policy_save_mem");
        return buf;
    }
    void load_mem(span<const unsigned char> bytes)
    {
        ok(mm_policy_load_mem(h_, bytes.data(), bytes.size()), "mm_policy_load_mem");
    }
    void load_cb(mm_read_fn fn, void *ud)
    {
        ok(mm_policy_load_cb(h_, fn, ud), "mm_policy_load_cb");
    }

    void load(const std::string &path) { ok(mm_policy_load(h_, path.c_str()), "mm_policy_load"); }
    inline void set_comm(comm *c);
    const char *errmsg() const noexcept { return mm_policy_errmsg(h_); }

  private:
    void ok(int st, const char *call) { detail::check(st, call, errmsg()); }
    static void need(std::size_t have, int64_t want, const char *call, const char *what)
    {
        if (want >= 0 && have < static_cast<std::size_t>(want))
            throw error(MM_E_SHAPE, call,
                        (std::string(what) + " holds " + std::to_string(have) + " floats, " +
                         std::to_string(want) + " needed")
                            .c_str());
    }
    static float *opt(span<float> s) noexcept { return s.empty() ? nullptr : s.data(); }
    int64_t obs_dim_ = 0, act_width_ = 0;
};

/* ---- comm ----------------------------------------------------------------------------------- */
class comm : public detail::owner<mm_comm, mm_comm_free>
{
  public:
    comm() noexcept = default;
    explicit comm(mm_comm *c) noexcept : owner(c) {}
    explicit comm(const mm_comm_callbacks &cb, const mm_allocator *alloc = nullptr)
    {
        mm_comm *c = nullptr;
        detail::check(mm_comm_create(&c, &cb, alloc), "mm_comm_create");
        reset(c);
    }
    int32_t rank() const noexcept { return mm_comm_rank(h_); }
    int32_t size() const noexcept { return mm_comm_size(h_); }
    const char *errmsg() const noexcept { return mm_comm_errmsg(h_); }
};

inline void model::set_comm(comm *c)
{
    ok(mm_model_set_comm(h_, c ? c->get() : nullptr), "mm_model_set_comm");
}
inline void loss::set_comm(comm *c, uint32_t flags)
{
    ok(mm_loss_set_comm(h_, c ? c->get() : nullptr, flags), "mm_loss_set_comm");
}
inline void policy::set_comm(comm *c)
{
    ok(mm_policy_set_comm(h_, c ? c->get() : nullptr), "mm_policy_set_comm");
}

/* ---- threads: a pool for mm_sgemm_mt (Since 0.2) -------------------------------------------- */
class threads : public detail::owner<mm_threads, mm_threads_free>
{
  public:
    threads() noexcept = default;
    explicit threads(mm_threads *t) noexcept : owner(t) {}
    /* mm_threads_create: n_threads in 1..256 (1 starts no thread). */
    explicit threads(int32_t n_threads, const mm_allocator *alloc = nullptr)
    {
        mm_threads *t = nullptr;
        detail::check(mm_threads_create(&t, n_threads, alloc), "mm_threads_create");
        reset(t);
    }
};

/* ---- free functions ------------------------------------------------------------------------- */
/* C = alpha op(A) op(B) + beta C on row-major buffers (mm_sgemm without a workspace). */
inline void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  span<const float> a, int64_t lda, span<const float> b, int64_t ldb, float beta,
                  span<float> c, int64_t ldc)
{
    detail::check(mm_sgemm(trans_a ? MM_TRANS : MM_NO_TRANS, trans_b ? MM_TRANS : MM_NO_TRANS, m, n,
                           k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc, nullptr, 0),
                  "mm_sgemm");
}
/* Since 0.2: mm_sgemm_mt on pool (nullptr: the calling thread) with its own workspace, or ws
 * (at least sgemm_mt_workspace_size(n) bytes, 64-byte aligned) when not empty. */
inline void sgemm_mt(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                     span<const float> a, int64_t lda, span<const float> b, int64_t ldb, float beta,
                     span<float> c, int64_t ldc, threads *pool = nullptr,
                     span<unsigned char> ws = span<unsigned char>())
{
    detail::check(mm_sgemm_mt(trans_a ? MM_TRANS : MM_NO_TRANS, trans_b ? MM_TRANS : MM_NO_TRANS, m,
                              n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc,
                              pool ? pool->get() : nullptr, ws.empty() ? nullptr : ws.data(),
                              ws.size()),
                  "mm_sgemm_mt");
}
inline std::size_t sgemm_workspace_size() noexcept { return mm_sgemm_workspace_size(); }
inline std::size_t sgemm_mt_workspace_size(int32_t n_threads) noexcept
{
    return mm_sgemm_mt_workspace_size(n_threads);
}

/* State-space initialisers (no handle): HiPPO A (n*n) and B (n, or empty), the rank x n
 * low-rank correction P and the n*n normal part (or empty), S4D's h*n/2 diagonal, and
 * discretisation (a, ad: n*n dense or n with MM_DISC_DIAGONAL; b, bd: n or empty). Sizes are
 * checked before the C call (MM_E_SHAPE). */
namespace detail
{
inline void need_n(std::size_t have, int64_t want, const char *call, const char *what)
{
    if (want > 0 && have < static_cast<std::size_t>(want))
        throw error(MM_E_SHAPE, call, (std::string(what) + " is too short").c_str());
}
template <class T> T *opt(span<T> s) noexcept { return s.empty() ? nullptr : s.data(); }
} // namespace detail
inline void hippo(int32_t measure, int64_t n, span<double> a, span<double> b = span<double>())
{
    detail::need_n(a.size(), n * n, "mm_hippo", "a");
    if (!b.empty()) detail::need_n(b.size(), n, "mm_hippo", "b");
    detail::check(mm_hippo(measure, n, a.data(), detail::opt(b)), "mm_hippo");
}
inline void hippo_rank_correction(int32_t measure, int64_t n, int32_t rank, span<double> p,
                                  span<double> normal = span<double>())
{
    const char *c = "mm_hippo_rank_correction";
    detail::need_n(p.size(), static_cast<int64_t>(rank) * n, c, "p");
    if (!normal.empty()) detail::need_n(normal.size(), n * n, c, "normal");
    detail::check(mm_hippo_rank_correction(measure, n, rank, p.data(), detail::opt(normal)), c);
}
inline void s4d_init(int32_t variant, int64_t h, int64_t n, span<float> log_a_real,
                     span<float> a_imag)
{
    detail::need_n(log_a_real.size(), h * (n / 2), "mm_ssm_s4d_init", "log_a_real");
    detail::need_n(a_imag.size(), h * (n / 2), "mm_ssm_s4d_init", "a_imag");
    detail::check(mm_ssm_s4d_init(variant, h, n, log_a_real.data(), a_imag.data()),
                  "mm_ssm_s4d_init");
}
inline void discretize(int32_t method, uint32_t flags, int64_t n, span<const double> a,
                       span<const double> b, double dt, span<double> ad,
                       span<double> bd = span<double>(), const mm_allocator *alloc = nullptr)
{
    const char *c = "mm_ssm_discretize";
    int64_t an = (flags & MM_DISC_DIAGONAL) ? n : n * n;
    detail::need_n(a.size(), an, c, "a");
    detail::need_n(ad.size(), an, c, "ad");
    if (!b.empty()) detail::need_n(b.size(), n, c, "b");
    if (!bd.empty()) detail::need_n(bd.size(), n, c, "bd");
    detail::check(mm_ssm_discretize(method, flags, n, a.data(), b.empty() ? nullptr : b.data(), dt,
                                    ad.data(), detail::opt(bd), alloc),
                  c);
}

/* Version and build facts. The tables of mm_param_count / mm_param_info / mm_param_bounds and
 * mm_enum_count / mm_enum_info hand out static strings and numbers (nothing to own, nothing
 * that throws more usefully than their status): call them from C++ as they are. */
inline const char *version() noexcept { return mm_version_string(); }
inline uint32_t version_number() noexcept { return mm_version_number(); }
inline uint32_t abi_version() noexcept { return static_cast<uint32_t>(mm_abi_version()); }
inline const char *build_info() noexcept { return mm_build_info(); }

} // namespace mm

#endif /* MM_HPP_6A1F */
