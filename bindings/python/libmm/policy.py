# SPDX-License-Identifier: MIT
"""mm_policy: reinforcement-learning agents (DDPG, TD3, A2C, QAC, PPO, TRPO, SAC) driven from
Python: act -> step the environment -> observe -> update."""
import ctypes

import numpy as np

from . import constants, errors
from ._lib import lib, PolicyOpts, PolicyExportInfo, f32p, u8p, c_int32, c_int64
from .core import (Handle, check_int, err_buffer, f32_input, flag_input, lookup, path_arg,
                   pointer, raise_create, reader, set_field, set_fields)


class Policy(Handle):
    """An agent. algo: "ppo", "td3", ...; options are mm_policy_opts fields, plus act_low /
    act_high as sequences of act_dim bounds, hidden as a list of 1 to 4 widths and memory as
    "none" or "lru" (PPO with a memory core: memory_dim, memory_seq_len).

    Arrays have exact shapes, never reshaped: obs and next_obs [n, obs_dim]; actions
    [n, act_dim] (continuous) or [n] (discrete), as act() returns them; rewards, terminated and
    truncated [n]."""

    _free = staticmethod(lib.mm_policy_free)
    _errmsg = staticmethod(lib.mm_policy_errmsg)
    _setter = staticmethod(lib.mm_policy_set_f64)
    _getter = staticmethod(lib.mm_policy_get_f64)
    _param_ids = constants.POLICY_PARAMS

    def __init__(self, algo, obs_dim, act_dim=None, n_actions=None, act_low=None,
                 act_high=None, hidden=None, **fields):
        super().__init__()
        o = PolicyOpts()
        errors.check(lib.mm_policy_opts_init(ctypes.byref(o),
                                             lookup(constants.ALGOS, algo, "algorithm")))
        set_field(o, "obs_dim", obs_dim)
        if act_dim is not None:
            set_field(o, "act_dim", act_dim)
        if n_actions is not None:
            set_field(o, "n_actions", n_actions)
        if hidden is not None:
            hidden = list(hidden)
            if not 1 <= len(hidden) <= len(o.hidden):
                raise errors.error(errors.E_INVALID_ARG, "hidden: 1 to %d layer widths, not %d"
                                   % (len(o.hidden), len(hidden)))
            o.n_hidden = len(hidden)
            for i, w in enumerate(hidden):
                o.hidden[i] = check_int(w, c_int64, "hidden[%d]" % i)
        if isinstance(fields.get("memory"), str):
            fields["memory"] = lookup(constants.MEMORIES, fields["memory"], "memory")
        set_fields(o, fields)
        # bounds: act_dim floats each, read by create only; the arrays stay referenced until then
        bounds = []
        for name, b in (("act_low", act_low), ("act_high", act_high)):
            if b is None:
                continue
            if o.n_actions:
                raise errors.error(errors.E_INVALID_ARG, "%s applies to continuous actions "
                                   "(n_actions is %d)" % (name, o.n_actions))
            bounds.append(f32_input(b, name, (o.act_dim,)))
            setattr(o, name, pointer(bounds[-1], f32p))
        buf = err_buffer()
        o.err_buf, o.err_buf_size = ctypes.cast(buf, ctypes.c_char_p), len(buf)
        rc = lib.mm_policy_create(ctypes.byref(self._owner.ptr), ctypes.byref(o))
        if rc != 0:
            raise_create(rc, buf)
        self.obs_dim = o.obs_dim
        self.discrete = bool(o.n_actions)
        self.act_width = 1 if self.discrete else o.act_dim
        self.n_agents = o.n_agents

    def _action_shape(self, n):
        return (n,) if self.discrete else (n, self.act_width)

    def _rows(self, obs, name):
        obs = f32_input(obs, name)
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise errors.error(errors.E_SHAPE, "%s has shape %s; expected [n, %d]" %
                               (name, obs.shape, self.obs_dim))
        return obs

    def act(self, obs, explore=True):
        """Actions for obs [n, obs_dim]: [n, act_dim] floats, or [n] indices if discrete."""
        obs = self._rows(obs, "obs")
        n = obs.shape[0]
        out = np.empty(self._action_shape(n), np.float32)
        self._call(lib.mm_policy_act, pointer(obs, f32p), n, pointer(out, f32p),
                   int(bool(explore)))
        return out

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated):
        """Records n transitions (rows); every array must have the shape of its n rows."""
        obs = self._rows(obs, "obs")
        n = obs.shape[0]
        act = f32_input(actions, "actions", self._action_shape(n))
        rew = f32_input(rewards, "rewards", (n,))
        nxt = f32_input(next_obs, "next_obs", obs.shape)
        te = flag_input(terminated, "terminated", (n,))
        tr = flag_input(truncated, "truncated", (n,))
        self._call(lib.mm_policy_observe, pointer(obs, f32p), pointer(act, f32p),
                   pointer(rew, f32p), pointer(nxt, f32p), pointer(te, u8p), pointer(tr, u8p),
                   n)

    def update(self):
        """Trains when it is time; True if it did."""
        did = ctypes.c_int32()
        self._call(lib.mm_policy_update, ctypes.byref(did))
        return bool(did.value)

    def update_budget(self, max_minibatches):
        """Runs at most max_minibatches units of the due update; True when none is left."""
        done = ctypes.c_int32()
        self._call(lib.mm_policy_update_budget, int(max_minibatches), ctypes.byref(done))
        return bool(done.value)

    def bind_rows(self, n=None):
        """Fixed buffers for n rows (default n_agents) with their C pointers made once: a loop
        that writes obs, rewards, next_obs and the flags into them and calls act() / observe()
        of the returned object pays no conversion, validation or allocation per step (that is
        about 0.1 ms per act -> observe pair, the adapter's whole cost; libmm.gym.train uses it).
        C still checks the values (shapes are fixed here, dtypes by the buffers)."""
        return BoundRows(self, self.n_agents if n is None else n)

    def reset_agent(self, i):
        """Forgets agent i's memory (a new episode the policy did not see end)."""
        self._call(lib.mm_policy_reset_agent, check_int(i, c_int64, "i"))

    def save(self, path, checkpoint=False):
        """Writes the policy file; checkpoint=True also stores the full training state
        (mm_policy_save_ex with MM_POLICY_SAVE_CHECKPOINT)."""
        if checkpoint:
            self._call(lib.mm_policy_save_ex, path_arg(path), _SAVE_CHECKPOINT)
        else:
            self._call(lib.mm_policy_save, path_arg(path))

    def load(self, path):
        self._call(lib.mm_policy_load, path_arg(path))

    def to_bytes(self, checkpoint=False):
        """The bytes save(path, checkpoint) would write."""
        flags = _SAVE_CHECKPOINT if checkpoint else 0
        size = ctypes.c_size_t()
        self._call(lib.mm_policy_save_mem, None, 0, ctypes.byref(size), flags)
        buf = ctypes.create_string_buffer(size.value)
        self._call(lib.mm_policy_save_mem, buf, len(buf), ctypes.byref(size), flags)
        return buf.raw[:size.value]

    def load_bytes(self, data):
        """As load, from the bytes of to_bytes (any bytes-like object)."""
        blob = memoryview(data).tobytes()
        raw = ctypes.create_string_buffer(blob, len(blob))
        self._call(lib.mm_policy_load_mem, raw, len(blob))

    def load_stream(self, stream):
        """As load, from a binary file object (anything with read(n)); nothing past the
        policy file's last byte is read."""
        fn, caught = reader(stream)
        owner = self._live()
        rc = lib.mm_policy_load_cb(owner.ptr, fn, None)
        if rc < 0 and caught:
            raise errors.error(rc, "reading the stream failed: %r" % caught[0]) from caught[0]
        if rc < 0:
            errors.check(rc, self._errmsg, owner.ptr)

    @classmethod
    def from_file(cls, path, algo=None, **fields):
        """A new policy from a policy file: architecture, spaces and bounds from the file, the
        other options (mm_policy_opts fields: n_agents, buffer_size, lr_actor, seed, ...) from
        fields over the defaults of the file's algorithm (mm_policy_load_new; give that
        algorithm as algo when passing fields)."""
        p = cls.__new__(cls)
        Handle.__init__(p)
        o, opts = None, None
        buf = err_buffer()
        if fields and algo is None:
            raise errors.error(errors.E_INVALID_ARG, "options need algo (the file's algorithm)")
        if algo is not None:
            o = PolicyOpts()
            errors.check(lib.mm_policy_opts_init(ctypes.byref(o),
                                                 lookup(constants.ALGOS, algo, "algorithm")))
            set_fields(o, fields)
            o.err_buf, o.err_buf_size = ctypes.cast(buf, ctypes.c_char_p), len(buf)
            opts = ctypes.byref(o)
        rc = lib.mm_policy_load_new(ctypes.byref(p._owner.ptr), path_arg(path), opts)
        if rc != 0:
            raise_create(rc, buf)
        info = p.export_io()
        p.obs_dim = info["obs_dim"]
        p.discrete = info["output"] == _EXPORT_ARGMAX
        p.act_width = info["act_dim"]
        p.n_agents = o.n_agents if o is not None else 1  # the defaults' n_agents is 1
        return p

    # ---- the deterministic actor as an mm_model (since libmm 0.2) -----------------------------
    def export(self, max_batch=1, n_threads=1):
        """The deterministic actor as a new libmm.Model (a copy; refresh it with
        export_copy). Its input is the normalised observation; export_io() gives the steps
        around it that reproduce act(obs, explore=False)."""
        from .model import Model, _opts
        m = Model._adopt()
        o, buf = _opts(0, max_batch, 1, 0, n_threads)
        self._call(lib.mm_policy_export, ctypes.byref(m._owner.ptr), ctypes.byref(o))
        return m

    def export_copy(self, model):
        """Refreshes a model made by export() with the actor's current parameters."""
        from .model import Model
        if not isinstance(model, Model):
            raise TypeError("model must be a libmm.Model, not %s" % type(model).__name__)
        mo = model._live()  # held until the call returns
        self._call(lib.mm_policy_export_copy, mo.ptr)

    def export_save(self, path):
        """Writes the exported actor as a model file (libmm.Model.load reads it)."""
        self._call(lib.mm_policy_export_save, path_arg(path))

    def export_io(self):
        """The constants around an exported actor: a dict with output (MM_EXPORT_*) and
        output_name ("tanh_rescale", "clip", "argmax", "tanh_mean"), norm_obs, obs_dim,
        act_dim, model_out, clip_obs and the arrays obs_mean, obs_istd [obs_dim], act_low,
        act_high [act_dim] (copies of the current values)."""
        info = PolicyExportInfo()
        self._call(lib.mm_policy_export_io, ctypes.byref(info), None, None, None, None)
        arrays = [np.empty(n, np.float32) for n in (info.obs_dim, info.obs_dim, info.act_dim,
                                                    info.act_dim)]
        self._call(lib.mm_policy_export_io, ctypes.byref(info),
                   *(pointer(a, f32p) for a in arrays))
        d = {f: getattr(info, f) for f, _ in PolicyExportInfo._fields_ if f != "reserved"}
        d["output_name"] = _EXPORT_NAMES.get(info.output, str(info.output))
        d.update(zip(("obs_mean", "obs_istd", "act_low", "act_high"), arrays))
        return d

    def act_exported(self, model, obs):
        """act(obs, explore=False) computed through an exported model and export_io() in
        numpy (the steps mm.h documents for mm_policy_export): for checking or for serving
        the actor from another runtime."""
        io = self.export_io()
        x = self._rows(obs, "obs")
        if io["norm_obs"]:
            c = np.float32(io["clip_obs"])
            x = np.clip((x - io["obs_mean"]) * io["obs_istd"], -c, c).astype(np.float32)
        y = model.infer(x)
        lo, hi, out = io["act_low"], io["act_high"], io["output"]
        if out == _EXPORT_ARGMAX:
            return np.argmax(y, axis=1).astype(np.float32)
        if out == _EXPORT_CLIP:
            return np.where(y < lo, lo, np.where(y > hi, hi, y)).astype(np.float32)
        if out == _EXPORT_TANH_MEAN:
            y = np.tanh(y[:, :io["act_dim"]].astype(np.float64)).astype(np.float32)
        return (lo + (y + np.float32(1)) * np.float32(0.5) * (hi - lo)).astype(np.float32)


_EXPLORE = (c_int32(0), c_int32(1))
_SAVE_CHECKPOINT = constants.ENUMS["MM_POLICY_SAVE_CHECKPOINT"]
_EXPORT_TANH_MEAN = constants.EXPORT_OUTPUTS["tanh_mean"]
_EXPORT_ARGMAX = constants.EXPORT_OUTPUTS["argmax"]
_EXPORT_CLIP = constants.EXPORT_OUTPUTS["clip"]
_EXPORT_NAMES = {v: k for k, v in constants.EXPORT_OUTPUTS.items()}


class BoundRows:
    """Policy.bind_rows(n): arrays obs and next_obs [n, obs_dim], actions (as act returns them),
    rewards [n] float32, terminated and truncated [n] uint8. Write into them (io.obs[:] = x);
    the attributes cannot be rebound, so the pointers made once stay valid. act() fills
    actions from obs and returns that same array (overwritten by the next act: copy what must
    outlive it); observe() records the rows as they stand. The Policy stays usable as before."""

    __slots__ = ("policy", "n", "_bufs", "_act_args", "_obs_args")
    _NAMES = ("obs", "next_obs", "actions", "rewards", "terminated", "truncated")

    def __init__(self, policy, n):
        n = check_int(n, c_int64, "n")
        if not 1 <= n <= policy.n_agents:
            raise errors.error(errors.E_INVALID_ARG, "n = %d: 1 to n_agents (%d) rows" %
                               (n, policy.n_agents))
        self.policy, self.n = policy, n
        obs, nxt = (np.zeros((n, policy.obs_dim), np.float32) for _ in range(2))
        act = np.zeros(policy._action_shape(n), np.float32)
        rew = np.zeros(n, np.float32)
        te, tr = np.zeros(n, np.uint8), np.zeros(n, np.uint8)
        self._bufs = (obs, nxt, act, rew, te, tr)
        rows = c_int64(n)  # ctypes instances skip the per-call integer range check
        self._act_args = (pointer(obs, f32p), rows, pointer(act, f32p))
        self._obs_args = (pointer(obs, f32p), pointer(act, f32p), pointer(rew, f32p),
                          pointer(nxt, f32p), pointer(te, u8p), pointer(tr, u8p), rows)

    def act(self, explore=True):
        self.policy._call(lib.mm_policy_act, *self._act_args, _EXPLORE[bool(explore)])
        return self._bufs[2]

    def observe(self):
        self.policy._call(lib.mm_policy_observe, *self._obs_args)


for _i, _name in enumerate(BoundRows._NAMES):
    setattr(BoundRows, _name, property(lambda self, i=_i: self._bufs[i]))
del _i, _name
