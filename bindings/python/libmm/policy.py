"""mm_policy: reinforcement-learning agents (DDPG, TD3, A2C, QAC, PPO, TRPO) driven from
Python: act -> step the environment -> observe -> update."""
import ctypes

import numpy as np

from . import constants, errors
from ._lib import lib, PolicyOpts, f32p, i32p, u8p
from .core import Handle, as_f32, err_buffer, lookup, raise_create


class Policy(Handle):
    """An agent. algo: "ppo", "td3", ...; options are mm_policy_opts fields, plus act_low /
    act_high as sequences and hidden as a list of up to 4 widths."""

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
        o.obs_dim = obs_dim
        if act_dim is not None:
            o.act_dim = act_dim
        if n_actions is not None:
            o.n_actions = n_actions
        # bounds are copied at create; keep the arrays alive until then
        lo = None if act_low is None else as_f32(act_low)
        hi = None if act_high is None else as_f32(act_high)
        if lo is not None:
            o.act_low = lo.ctypes.data_as(f32p)
        if hi is not None:
            o.act_high = hi.ctypes.data_as(f32p)
        if hidden is not None:
            o.n_hidden = len(hidden)
            for i, w in enumerate(hidden):
                o.hidden[i] = w
        for k, v in fields.items():
            if not hasattr(o, k):
                raise TypeError("unknown option %r" % k)
            setattr(o, k, v)
        buf = err_buffer()
        o.err_buf, o.err_buf_size = ctypes.cast(buf, ctypes.c_char_p), len(buf)
        rc = lib.mm_policy_create(ctypes.byref(self.handle), ctypes.byref(o))
        if rc != 0:
            raise_create(rc, buf)
        self.obs_dim = obs_dim
        self.discrete = bool(o.n_actions)
        self.act_width = 1 if self.discrete else o.act_dim
        self.n_agents = o.n_agents

    def act(self, obs, explore=True):
        """Actions for obs [n, obs_dim]: [n, act_dim] floats, or [n] indices if discrete."""
        obs = as_f32(obs).reshape(-1, self.obs_dim)
        n = obs.shape[0]
        out = np.empty((n,) if self.discrete else (n, self.act_width), np.float32)
        self._check(lib.mm_policy_act(self.handle, obs.ctypes.data_as(f32p), n,
                                      out.ctypes.data_as(f32p), int(bool(explore))))
        return out

    def observe(self, obs, actions, rewards, next_obs, terminated, truncated):
        """Records n transitions (rows)."""
        obs = as_f32(obs).reshape(-1, self.obs_dim)
        n = obs.shape[0]
        act, rew = as_f32(actions), as_f32(rewards)
        nxt = as_f32(next_obs).reshape(-1, self.obs_dim)
        te = np.ascontiguousarray(terminated, dtype=np.uint8)
        tr = np.ascontiguousarray(truncated, dtype=np.uint8)
        self._check(lib.mm_policy_observe(self.handle, obs.ctypes.data_as(f32p),
                                          act.ctypes.data_as(f32p), rew.ctypes.data_as(f32p),
                                          nxt.ctypes.data_as(f32p), te.ctypes.data_as(u8p),
                                          tr.ctypes.data_as(u8p), n))

    def update(self):
        """Trains when it is time; True if it did."""
        did = ctypes.c_int32()
        self._check(lib.mm_policy_update(self.handle, ctypes.byref(did)))
        return bool(did.value)

    def save(self, path):
        self._check(lib.mm_policy_save(self.handle, str(path).encode()))

    def load(self, path):
        self._check(lib.mm_policy_load(self.handle, str(path).encode()))
