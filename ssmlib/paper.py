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
        "ssm_speedup_vs_ar", 5.0, "x or more (imagination speed, SSM over pixel AR: 'more than 5x')", "secondary",
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

MODEL_FREE_REFERENCES = {
    "MsPacman": {"A2C": {"frames": 40e6, "score": 1600}, "DQN": {"frames": 10e6, "score": 2200}},
}
"""Published model-free training scores (emulator frames, score) that our model-free arm is checked against:
other papers' learning curves, approximate, as quoted when the I2A campaign was designed. Neither this
paper's numbers nor ours, and a sanity check, not a target (``ssmlib.studies.i2a_campaign.model_free_sanity``)."""


@dataclass(frozen=True)
class PaperItem:
    """One item of the paper and where the code has it: ``symbol`` is the dotted path of the Python object
    that computes it, ``chapter`` the book page that teaches it (``notebooks/NN_name``), ``test`` a pytest
    node id that exercises it. ``tests/test_paper_map.py`` checks that all three exist."""

    item: str
    equation: str
    symbol: str
    chapter: str
    test: str


PAPER_MAP = (
    PaperItem("training windows: 3 context frames, then T frames to predict",
              r"(o_{-2}, o_{-1}, o_0;\ a_{0:T-1};\ o_{1:T})",
              "ssmlib.data.windows.WindowSampler", "notebooks/01_data",
              "tests/test_data.py::test_windows_never_cross_episodes"),
    PaperItem("encoder e(o_t)", r"e(o_t) \in \mathbb{R}^{C \times H/8 \times W/8}",
              "ssmlib.models.blocks.Encoder", "notebooks/02_blocks",
              "tests/test_models.py::test_encoder_decoder_shapes"),
    PaperItem("initial state from 3 context frames", r"s_0 = \mathrm{init}(e(o_{-2}), e(o_{-1}), e(o_0))",
              "ssmlib.models.state_space.StateSpaceModel.initial_state", "notebooks/02_blocks",
              "tests/test_models.py::test_bad_batch_shapes"),
    PaperItem("transition network g (res_conv, pool-and-inject)", r"s_t = g(s_{t-1}, z_t, a_{t-1})",
              "ssmlib.models.blocks.Transition", "notebooks/02_blocks",
              "tests/test_models.py::test_model_shapes_quick_profile"),
    PaperItem("decoder / Bernoulli pixel likelihood",
              r"\log p(o_t \mid s_t, z_t) = \sum_{c,y,x} o \log p + (1 - o) \log(1 - p)",
              "ssmlib.models.base.EnvironmentModel.frame_terms", "notebooks/02_blocks",
              "tests/test_models.py::test_step_loop_matches_imagine_and_observe_matches_score"),
    PaperItem("reward prediction", r"p(r_t \mid s_t)",
              "ssmlib.models.blocks.RewardHead", "notebooks/02_blocks",
              "tests/test_models.py::test_reward_bits_round_trip"),
    PaperItem("AR / RAR pixel models", r"p(o_t \mid o_{t-k:t-1}, a_{t-1}),\ \ p(o_t \mid h_t)",
              "ssmlib.models.autoregressive.AutoregressiveModel", "notebooks/03_autoregressive",
              "tests/test_train.py::test_bernoulli_floor_and_pixel_call_counts"),
    PaperItem("dSSM-DET transition", r"s_t = g(s_{t-1}, a_{t-1})",
              "ssmlib.models.state_space.StateSpaceModel._next_s", "notebooks/04_dssm",
              "tests/test_models.py::test_det_imagination_deterministic_and_sssm_sampling"),
    PaperItem("dSSM-VAE (the latent feeds the decoder only)", r"s_t = g(s_{t-1}, a_{t-1}),\ \ p(o_t \mid s_t, z_t)",
              "ssmlib.models.state_space.StateSpaceModel._features", "notebooks/04_dssm",
              "tests/test_models.py::test_posterior_sees_real_frame_prior_does_not"),
    PaperItem("sSSM transition prior p(z_t | s_{t-1}, a_{t-1})",
              r"z_t \sim p(z_t \mid s_{t-1}, a_{t-1}),\ \ s_t = g(s_{t-1}, z_t, a_{t-1})",
              "ssmlib.models.state_space.StateSpaceModel.step", "notebooks/05_sssm",
              "tests/test_models.py::test_det_imagination_deterministic_and_sssm_sampling"),
    PaperItem("filtering posterior q(z_t | s_{t-1}, a_{t-1}, o_t)", r"q(z_t \mid s_{t-1}, a_{t-1}, o_t)",
              "ssmlib.models.state_space.StateSpaceModel._filter_z", "notebooks/05_sssm",
              "tests/test_models.py::test_posterior_sees_real_frame_prior_does_not"),
    PaperItem("KL term", r"\mathrm{KL}(q(z_t \mid \cdot) \,\Vert\, p(z_t \mid s_{t-1}, a_{t-1}))",
              "ssmlib.models.blocks.gaussian_kl", "notebooks/05_sssm",
              "tests/test_models.py::test_kl_nonnegative_and_iwae_above_elbo"),
    PaperItem("ELBO", r"\sum_t \mathbb{E}_q[\log p(o_t \mid s_t, z_t)] - \mathrm{KL}(q \,\Vert\, p)",
              "ssmlib.models.base.EnvironmentModel.loss", "notebooks/05_sssm",
              "tests/test_models.py::test_overfits_one_tiny_batch"),
    PaperItem("importance-weighted bound (IWAE)",
              r"\log \frac{1}{K} \sum_k \prod_t \frac{p(o_t \mid \cdot)\, p(z^k_t \mid \cdot)}{q(z^k_t \mid \cdot)}",
              "ssmlib.models.base.EnvironmentModel.score", "notebooks/05_sssm",
              "tests/test_models.py::test_kl_nonnegative_and_iwae_above_elbo"),
    PaperItem("imagination: rollouts sample z from the prior", r"\hat z_t \sim p(z_t \mid \hat s_{t-1}, a_{t-1})",
              "ssmlib.models.state_space.StateSpaceModel.imagine", "notebooks/05_sssm",
              "tests/test_models.py::test_step_loop_matches_imagine_and_observe_matches_score"),
    PaperItem("test log-likelihood (nats per frame) and its floor",
              r"\log p(o_h \mid o_{\le 0}, a_{0:h-1})",
              "ssmlib.evaluate.evaluate", "notebooks/05_sssm",
              "tests/test_evaluate.py::test_real_models_excess_ll_and_floor_agree"),
    PaperItem("jumpy model (k steps per transition)", r"s_{t+k} = g(s_t, a_{t:t+k})",
              "ssmlib.models.blocks.tile_actions", "notebooks/06_jumpy_speed",
              "tests/test_models.py::test_jumpy_action_tiling_order"),
    PaperItem("jumpy windows: rewards summed over a chunk", r"r_{t:t+k} = \sum_{i=0}^{k-1} r_{t+i}",
              "ssmlib.data.windows.WindowSampler", "notebooks/06_jumpy_speed",
              "tests/test_data.py::test_jumpy_windows_chunk_actions_and_sum_rewards"),
    PaperItem("imagination speed (imagined steps per second)", r"\text{steps/s}",
              "ssmlib.studies.speed.bench_rollout", "notebooks/06_jumpy_speed",
              "tests/test_bench.py::test_bench_rollout_writes_rows_with_ratios"),
    PaperItem("A2C with GAE: advantages", r"\hat A_t = \sum_l (\gamma\lambda)^l \delta_{t+l}",
              "ssmlib.agents.a2c.gae", "notebooks/07_model_free",
              "tests/test_agents.py::test_gae_stops_at_episode_ends_hand_made"),
    PaperItem("A2C with GAE: policy, value and entropy losses",
              r"-\hat A_t \log \pi(a_t \mid o_t) + \tfrac12 c_v (R_t - V(o_t))^2 - c_H \mathcal{H}(\pi)",
              "ssmlib.agents.a2c.a2c_losses", "notebooks/07_model_free",
              "tests/test_agents.py::test_only_the_distillation_term_reaches_a_distilled_rollout_policy"),
    PaperItem("model-free baseline agent", r"\pi(a \mid o_t),\ V(o_t)",
              "ssmlib.agents.networks.ModelFreeAgent", "notebooks/07_model_free",
              "tests/test_agent_view.py::test_play_agent_with_a_model_free_agent_and_one_env_only"),
    PaperItem("I2A imagination core (one rollout per first action)",
              r"a_0 = a,\ \ a_j \sim \hat\pi(\cdot \mid \hat s_j),\ \ \hat s_{j+1} = g(\hat s_j, a_j)",
              "ssmlib.agents.networks.I2AAgent.imagine", "notebooks/08_i2a",
              "tests/test_agents.py::test_first_action_of_each_rollout_is_forced"),
    PaperItem("I2A rollout encoder (LSTM reads the last step first)",
              r"c_a = \mathrm{LSTM}(f(\hat s_D, \hat r_D), \dots, f(\hat s_1, \hat r_1))",
              "ssmlib.agents.networks.RolloutEncoder", "notebooks/08_i2a",
              "tests/test_agents.py::test_imagination_is_one_batched_call_per_depth_over_envs_times_actions"),
    PaperItem("frozen environment model inside I2A", r"\nabla_{\theta_{\mathrm{model}}} = 0",
              "ssmlib.agents.networks.I2AAgent", "notebooks/08_i2a",
              "tests/test_agents.py::test_environment_model_stays_frozen_through_training_updates"),
    PaperItem("copy model baseline", r"\hat s_{j+1} = \hat s_j",
              "ssmlib.agents.networks.CopyModel", "notebooks/08_i2a",
              "tests/test_agents.py::test_copy_model_returns_its_input"),
    PaperItem("rollout policy distillation loss", r"-\sum_a \mathrm{sg}(\pi(a \mid o_t)) \log \hat\pi(a \mid s_t)",
              "ssmlib.agents.a2c.distill_loss", "notebooks/09_learning_to_query",
              "tests/test_agents.py::test_distillation_has_the_right_sign_and_decreases_kl"),
    PaperItem("learning to query (rollout policy trained through imagination)",
              r"\nabla_{\hat\pi} \mathcal{L}_{\mathrm{RL}}\ \text{(straight-through Gumbel-softmax, ours)}",
              "ssmlib.agents.networks.straight_through_gumbel", "notebooks/09_learning_to_query",
              "tests/test_agents.py::test_learning_to_query_sends_policy_gradients_into_the_rollout_policy"),
    PaperItem("the five claims, judged", r"\text{reproduced / not reproduced / inconclusive / not run}",
              "ssmlib.claims.all_claims", "notebooks/10_results",
              "tests/test_claims.py::test_every_claim_on_the_committed_results"),
)
"""Each item of the paper, the Python object that computes it, the chapter that teaches it and a test that
exercises it. A map of the code, not a result."""


I2A_LABELS = {"model-free": "model-free", "copy-distill": "copy model", "i2a-uniform": "I2A uniform",
              "i2a-distill": "I2A distillation", "i2a-learned": "I2A learning to query"}
"""Our agent variants (``ssmlib.studies.i2a.VARIANTS``) -> the paper's curve labels in ``i2a_mspacman_scores``."""


def paper_i2a_scores() -> dict[str, float]:
    """The paper's MS_PACMAN scores (read off its figure, roughly) by our variant names."""
    scores = PUBLISHED["i2a_mspacman_scores"].value
    return {ours: scores[label] for ours, label in I2A_LABELS.items()}
