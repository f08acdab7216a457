"""Fleet settings: the framework, the edges (how many, which misbehave and how, their numeric profiles)."""

from __future__ import annotations

from bmoe.edge.fleet import is_default_fleet
from bmoe.run.settings.limits import MAX_PARTIES
from bmoe.run.settings.setting import CLUSTER_UP, INFER, TRAIN, Flag, Setting, train_and_up
from bmoe.verify.framework import FRAMEWORKS

FLEET = (
    Setting("framework", "str", "bmoe", "B-MoE: redundant and verified; traditional: edge i hosts expert i",
            help="bmoe | traditional", choices=tuple(FRAMEWORKS),
            flags=train_and_up(up=Flag(choice=True, help="bmoe, or traditional: one server (no ledger, no "
                                       "verification), edge i hosts expert i"))),
    Setting("num_edges", "int", 10, "M (paper, Sec. V)", help="number of edges M", low=1, high=MAX_PARTIES,
            label="edges M", flags=train_and_up(train=Flag(("--edges", "-m")),
                                                up=Flag(("--edges",), click_type="positive"))),
    Setting("malicious_ratio", "float", 0.0, "no attackers; the malicious edges are the last ones",
            help="share of malicious edges", low=0.0, high=1.0, high_open=True, label="malicious ratio",
            flags={TRAIN: Flag(), CLUSTER_UP: Flag(("--malicious",), help="share of malicious edges (the last ones)"),
                   INFER: Flag(help="deploy among this share of attackers")}),
    Setting("attack", "str", "gaussian", "the paper's attack; any registered behaviour name",
            help="gaussian | gaussian_persistent | sign_flip | scale | random | replay | withhold | sleeper | "
                 "bound_hug",
            flags={TRAIN: Flag(), CLUSTER_UP: Flag(help="the malicious edges' behaviour"),
                   INFER: Flag(help="the attackers' behaviour")}),
    Setting("attack_params", "params", {}, "each behaviour's own defaults (probability, noise_std, ...)",
            help="NAME=NUMBER, e.g. probability=0.2 (repeatable)",
            flags=train_and_up(train=Flag(("--attack-param",)), up=Flag(("--attack-param",)))),
    Setting("collude", "bool", True, "paper: malicious edges in B-MoE publish identical manipulated results",
            help="malicious edges share their random choices", flags=train_and_up()),
    Setting("fleet", "str", "", "every edge 'default'",
            help="edges' numeric profiles PROFILE=COUNT,... in edge order, e.g. threads1=4,threads2=3,f64=3",
            label="edge numeric profiles", omit_when=lambda c: is_default_fleet(c.fleet),
            flags={TRAIN: Flag(shown_default="every edge 'default'"),
                   CLUSTER_UP: Flag(help="edges' numeric profiles PROFILE=COUNT,... in edge order; each edge process "
                                    "starts with its profile's environment and --profile; profiles that compute "
                                    "differently need --comparison tolerance", shown_default="every edge 'default'"),
                   INFER: Flag(help="serve on edges with these numeric profiles, PROFILE=COUNT,...")}),
)
