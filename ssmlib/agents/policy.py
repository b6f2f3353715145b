"""A trained agent as a data-collection policy (``python -m ssmlib collect --policy-agent CHECKPOINT``)."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import SsmlibError
from .checkpoint import load_agent
from .envs import STACK


class AgentPolicy:
    """A trained agent as a data-collection policy (``ssmlib.data.collect``'s Policy protocol).

    The collector hands over one frame per env per step; the agent reads the last 3, so this keeps a
    3-frame stack per env (filled with the first frame at the start). A new episode's first frames
    follow the last episode's in the stack for 2 steps: harmless for collection. Deterministic given
    the collector's ``rng`` (actions sampled from the policy with it).
    """

    def __init__(self, checkpoint, device: str = "cpu"):
        self.checkpoint = str(checkpoint)
        self.agent, self.cfg, self.meta, _ = load_agent(checkpoint, device=device)
        self.agent.eval()
        self.device = torch.device(device)
        self.stack: np.ndarray | None = None

    @torch.no_grad()
    def __call__(self, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if frames.shape[1:] != (self.cfg.height, self.cfg.width, 3):
            raise SsmlibError(f"the agent plays {self.cfg.height}x{self.cfg.width} frames, the collector gives "
                              f"{frames.shape[1]}x{frames.shape[2]}")
        if self.stack is None or len(self.stack) != len(frames):
            self.stack = np.repeat(frames[:, None], STACK, 1)
        self.stack = np.concatenate([self.stack[:, 1:], frames[:, None]], 1)
        logits = self.agent(torch.as_tensor(self.stack, device=self.device)).logits.float()
        p = torch.softmax(logits, -1).cpu().numpy().astype(np.float64)
        u = rng.random((len(p), 1))
        return np.minimum((p.cumsum(1) < u).sum(1), p.shape[1] - 1).astype(np.int64)

    def describe(self) -> dict:
        return {"name": "agent", "checkpoint": self.checkpoint, "agent": self.cfg.agent,
                "trained_steps": self.meta.get("step")}
