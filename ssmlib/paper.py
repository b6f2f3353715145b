"""What the paper says, as data: its five claims and the few numbers it publishes, each with how sure we are
of it. Chapters and ``ssmlib.claims`` quote these; nothing here is a result of ours.

The paper is Buesing, Weber, Racanière, Eslami, Rezende, Reichert, Viola, Besse, Gregor, Hassabis and
Wierstra, "Learning and Querying Fast Generative Models for Reinforcement Learning", arXiv:1802.03006
(2018). Its full text was not available to us: the claims below were reconstructed from its abstract and
from figure captions as redrawn in a later reproduction report, and checked against two independent
reimplementations. ``source`` says which: ``"paper"`` (abstract or caption), ``"secondary"`` (a summary
of the paper by others; the number may be off), ``"figure"`` (read off a plotted curve, roughly).
"""

from __future__ import annotations

from dataclasses import dataclass

CITATION = ("Buesing et al., Learning and Querying Fast Generative Models for Reinforcement Learning, "
            "arXiv:1802.03006, 2018")


@dataclass(frozen=True)
class Claim:
    number: int
    title: str
    text: str
    source: str


CLAIMS = {
    1: Claim(1, "SSMs are faster than pixel models at competitive accuracy",
             "State-space models (dSSM, sSSM) imagine substantially faster than autoregressive models in pixel "
             "space, at competitive accuracy.", "paper"),
    2: Claim(2, "Stochastic SSMs have higher likelihood",
             "The stochastic state-space model (sSSM) reaches a higher test log-likelihood than the deterministic "
             "ones on several ALE games. Deterministic here means a deterministic transition: dSSM-DET, and "
             "dSSM-VAE, whose latent feeds only the decoder.", "paper"),
    3: Claim(3, "Jumpy models are faster still at similar accuracy",
             "Jumpy (temporally abstract) state-space models, which make one transition per several environment "
             "steps, give a large further speed-up at similar accuracy.", "paper"),
    4: Claim(4, "I2A with an SSM beats model-free; learning to query helps",
             "An I2A agent that queries a state-space model beats the model-free baseline on MS_PACMAN, and "
             "learning to query (training the rollout policy through the imagination path) gives the best I2A.",
             "paper"),
    5: Claim(5, "Deterministic SSMs work better inside I2A with few rollouts",
             "Inside I2A with few rollouts, deterministic state-space models tend to work better than stochastic "
             "ones.", "paper"),
}
"""The paper's five claims that the book tests, in our words."""


@dataclass(frozen=True)
class Published:
    key: str
    value: object
    unit: str
    source: str
    note: str = ""


PUBLISHED = {
    "ssm_speedup_vs_ar": Published(
        "ssm_speedup_vs_ar", "more than 5", "x (imagination speed, SSM over pixel AR)", "secondary",
        "a secondary summary's figure; the paper's own table was not available"),
    "games": Published("games", 4, "ALE games in the model comparison", "paper",
                       "MS_PACMAN is certain; the other three are not known for sure"),
    "context_frames": Published("context_frames", 3, "real frames that build the initial state", "paper"),
    "train_horizon": Published("train_horizon", 10, "steps predicted ahead in training", "paper"),
    "i2a_env_steps": Published("i2a_env_steps", 5e8, "environment steps of the I2A curves", "figure"),
    "i2a_mspacman_scores": Published(
        "i2a_mspacman_scores",
        {"model-free": 3400, "copy model": 3900, "I2A uniform": 5200, "I2A distillation": 6300,
         "I2A learning to query": 6500, "I2A distillation, pixel model": 4100},
        "MS_PACMAN score at the end of training", "figure",
        "read off the paper's learning curves, roughly; at our budget (millions of frames, not 5e8 steps) "
        "only the ordering can be compared, never the levels"),
}
"""The few numbers the paper publishes that the book mentions, never as ours."""
