"""Location models: where new elderly-care sites should go.

`PMedian` (least total walking time), `MCLP` (most older residents within a
threshold) and `LSCP` (fewest sites that cover everyone, or a target share),
each built from a cost matrix or from layers and a walk network, with
existing facilities fixed open.  Solvers: a fast interchange heuristic
(NumPy) and an exact solver on HiGHS (radius formulation by lazily
generated cuts), see `planner.locate._heuristic` and `planner.locate._exact`.
`propose_sites` (`planner.locate.plan`) proposes township centres and
community stations for a study area: the decisions of a scenario run.

Examples
--------
>>> import numpy as np
>>> from planner.locate import PMedian
>>> cost = np.array([[0, 4, 8], [4, 0, 4], [8, 4, 0.]])
>>> r = PMedian.from_cost_matrix(cost, p=1).solve()
>>> r.sites.tolist(), r.objective, r.status
([1], 8.0, 'optimal')
"""

from planner.locate._candidates import generate_candidates
from planner.locate._models import (
    LSCP,
    MCLP,
    LocateResult,
    PMedian,
    cost_from_geodataframes,
)
from planner.locate._orlib import read_orlib
from planner.locate.plan import (
    SitePlan,
    TierModel,
    centres_needed,
    coverage_before_after,
    propose_sites,
)

__all__ = ["PMedian", "MCLP", "LSCP", "LocateResult", "cost_from_geodataframes", "read_orlib",
           "generate_candidates", "SitePlan", "TierModel", "centres_needed",
           "coverage_before_after", "propose_sites"]
