"""Engines that run the library's batch workflows elsewhere than in this process: ``--engine ray``.

Each engine is thin: the library plans the work and commits the results
(:func:`iea_data.workflows.labels.plan_prelabel` / :func:`~iea_data.workflows.labels.commit_prelabels`,
:func:`iea_data.workflows.catalog.ingest` with a ``scanner``, :func:`iea_data.workflows.assess.score_residual`);
the engine only distributes the per-item computation. See ``docs/scale-out.md``.

Not named ``ray`` (that would shadow the library). Ray itself is imported on first use, so
``iea --help`` does not load it, and without it ``--engine ray`` says how to install it.
"""

from ._ray_assess import RayAssessReport, assess_ray
from ._ray_ingest import ingest_ray
from ._ray_model import ACTOR_PID_DIR_ENV, DECODE_IN_ACTOR_ENV, ActorPlan, plan_actors
from ._ray_prelabel import prelabel_ray
from ._ray_runtime import (
    RAY_INSTALL_HINT,
    RayCluster,
    StorageError,
    check_shared_storage,
    ray_runtime,
    read_probe,
    require_ray,
)

ENGINES = ("local", "ray")

__all__ = [
    "ENGINES",
    "ACTOR_PID_DIR_ENV",
    "DECODE_IN_ACTOR_ENV",
    "ActorPlan",
    "RAY_INSTALL_HINT",
    "RayAssessReport",
    "RayCluster",
    "StorageError",
    "assess_ray",
    "check_shared_storage",
    "ingest_ray",
    "plan_actors",
    "prelabel_ray",
    "ray_runtime",
    "read_probe",
    "require_ray",
    "run_on_ray",
]


def run_on_ray(what: str, *, address=None, progress=None, **kwargs):
    """Start or join Ray, run ``what`` (``"prelabel"``, ``"assess"``, ``"ingest"``) there, shut down.

    Returns ``(report, cluster)``; the keywords are those of :func:`prelabel_ray`,
    :func:`assess_ray` or :func:`ingest_ray` (less the cluster).
    """
    runners = {"prelabel": prelabel_ray, "assess": assess_ray, "ingest": ingest_ray}
    if what not in runners:
        raise ValueError(f"what must be one of {', '.join(runners)}, got {what!r}")
    with ray_runtime(address) as cluster:
        if what == "prelabel":
            report = prelabel_ray(kwargs.pop("ws"), cluster, progress=progress, **kwargs)
        elif what == "ingest":
            report = ingest_ray(kwargs.pop("ws"), kwargs.pop("roots"), cluster, progress=progress, **kwargs)
        else:
            report = assess_ray(kwargs.pop("paths"), cluster, progress=progress, **kwargs)
    return report, cluster
