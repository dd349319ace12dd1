"""Shared fixtures: workspaces on SQLite and (when IEA_TEST_POSTGRES_URL is set) PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

# Property tests draw the same examples on every run (CI stays reproducible: a failure found once is
# found again); IEA_HYPOTHESIS_PROFILE=explore draws new ones to search wider.
from hypothesis import settings as _hypothesis_settings

_hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
_hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
_hypothesis_settings.load_profile(os.environ.get("IEA_HYPOTHESIS_PROFILE", "ci"))


REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PG_URL = os.environ.get("IEA_TEST_POSTGRES_URL")


def run_iea(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run the ``iea`` command as a user would (a subprocess), without IEA_HOME/IEA_DATABASE_URL leaking in."""
    e = dict(os.environ)
    e.pop("IEA_HOME", None)
    e.pop("IEA_DATABASE_URL", None)
    e["PYTHONPATH"] = str(REPO)
    e["COLUMNS"] = "200"
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout
    )


PG_SKIP_REASON = (
    "PostgreSQL tests need IEA_TEST_POSTGRES_URL (postgresql+psycopg://USER@HOST:PORT/DB); "
    ".ci/run starts a throwaway cluster and sets it"
)


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test with the reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"reference data {p} is absent (../shared is only beside the repo in CI and dev checkouts)")
    return p


@pytest.fixture
def rng():
    return np.random.default_rng(20261125)


def _pg_database():
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(PG_URL)
    name = f"iea_t_{uuid.uuid4().hex[:12]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False), name, admin


def _drop_pg(name: str, admin: str) -> None:
    import psycopg

    from iea_data.store import dispose_engines

    dispose_engines()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.sqlite'}"
        from iea_data.store import dispose_engines

        dispose_engines()
        return
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    url, name, admin = _pg_database()
    yield url
    _drop_pg(name, admin)


@pytest.fixture
def workspace(tmp_path, db_url, monkeypatch):
    """An initialised workspace whose catalog is on the parametrised backend."""
    from iea_data.store.workspace import init_workspace

    if db_url.startswith("postgresql"):
        monkeypatch.setenv("IEA_DATABASE_URL", db_url)
    else:
        monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    return init_workspace(tmp_path / "ws")


@pytest.fixture
def sqlite_workspace(tmp_path, monkeypatch):
    """An initialised workspace on SQLite only (for tests about files, not the backend)."""
    from iea_data.store import dispose_engines
    from iea_data.store.workspace import init_workspace

    monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    ws = init_workspace(tmp_path / "ws")
    yield ws
    dispose_engines()


@pytest.fixture(scope="session")
def demo_photos(tmp_path_factory):
    """Two demo scenes (astronaut, coffee): reference + four EV variants each, 10 PNGs."""
    from iea_data.workflows.demo import write_demo_photos

    folder = tmp_path_factory.mktemp("demo-photos")
    write_demo_photos(folder, photos=("astronaut", "coffee"))
    return folder


_APP_TESTS = Path(__file__).resolve().parent / "app"

#: Tests that take more than about 3 s each on a 2-core machine (measured with ``--durations``):
#: ``make test-fast`` (``-m "not slow"``) leaves them out, ``make test`` runs them. A test can also
#: carry ``@pytest.mark.slow`` itself; this list keeps the fast lane's budget (< 3 min) in one place.
SLOW_TESTS = frozenset(
    {
        "tests/app/test_app_team.py::test_a_killed_replica_loses_no_acknowledged_stroke_and_leaves_the_other_session_alone",
        "tests/app/test_app_team.py::test_sigterm_stops_the_proxy_and_every_replica",
        "tests/app/test_app_team.py::test_two_annotators_on_two_replicas_each_save_in_their_own_chain",
        "tests/app/test_app_team_pg_restart.py::test_saves_during_a_postgresql_restart_retry_and_lose_nothing",
        "tests/workflows/labels/test_saves_during_maintenance.py::test_saves_go_on_while_a_maintainer_command_runs",
        "tests/cli/test_cli.py::test_import_manifest_links_files_from_images_dir",
        "tests/cli/test_cli.py::test_ingest_ls_stats_errors_and_exit_status",
        "tests/cli/test_cli.py::test_manifest_import_export_and_bad_csv",
        "tests/cli/test_cli.py::test_prelabel_refdiff_and_show_render_a_heatmap",
        "tests/cli/test_cli.py::test_scenes_ls_and_set_reference",
        "tests/cli/test_cli_brackets.py::test_render_then_ingest_groups_one_scene_per_raw_with_the_right_evs",
        "tests/cli/test_cli_brackets.py::test_ingest_from_render_groups_in_one_step",
        "tests/cli/test_cli_hardening.py::test_password_in_the_workspace_setting_and_a_refused_connection_are_not_printed",
        "tests/cli/test_cli_users.py::test_users_add_ls_passwd_disable",
        "tests/cli/test_cli_users.py::test_users_demo_creates_the_documented_accounts",
        "tests/cli/test_cli_users.py::test_users_reset_password_role_and_log",
        "tests/core/model/test_model_boundary.py::test_fast_path_supports_autograd",
        "tests/core/model/test_model_boundary.py::test_predict_shapes_batches_and_sizes",
        "tests/core/model/test_model_boundary.py::test_structure_gradients_fast_equal_reference",
        "tests/core/model/test_pieanet_fidelity.py::test_output_independent_of_batch_mates",
        "tests/core/model/test_pieanet_fidelity.py::test_reference_path_matches_goldens_and_fast_path",
        "tests/core/model/test_pieanet_fidelity.py::test_released_batch_quirk_is_what_the_pairing_avoids",
        "tests/core/model/test_precision.py::test_bf16_stays_within_the_recorded_bound_on_the_goldens",
        "tests/core/model/test_precision.py::test_prepacked_weights_follow_weight_updates",
        "tests/core/model/test_precision.py::test_sub_batches_and_prepacked_weights_match_plain_ops",
        "tests/core/test_lazy.py::test_model_and_training_import_torch_only_on_first_use",
        "tests/workflows/assess/test_assess.py::test_cli_assess_writes_csv_and_json_and_exits_3_on_a_bad_file",
        "tests/workflows/assess/test_assess.py::test_photos_through_the_model",
        "tests/workflows/benchmark/test_benchmark_methods.py::test_pieanet_method_random_init_gives_maps_at_input_size",
        "tests/workflows/catalog/test_ingest_hardening.py::test_kill_9_at_any_point_then_rerun_equals_one_uninterrupted_run",
        "tests/workflows/catalog/test_ingest_workers.py::test_a_killed_decoder_costs_only_its_file_and_the_run_finishes",
        "tests/workflows/catalog/test_ingest_workers.py::test_two_large_files_never_decode_at_once_within_the_budget",
        "tests/workflows/catalog/test_manifest.py::test_released_manifests_round_trip_byte_for_byte",
        "tests/workflows/catalog/test_robustness.py::test_two_processes_ingesting_at_once_lose_nothing",
        "tests/workflows/labels/test_annotation_stateful.py::test_two_users_two_tabs",
        "tests/workflows/training/test_train_release_e2e.py::test_benchmark_cli_list_and_errors",
        "tests/workflows/training/test_training_resume.py::test_ddp_two_cpu_processes_under_torchrun",
        "tests/workflows/training/test_training_resume.py::test_resume_after_kill_9_equals_uninterrupted",
        # second round (fast lane measured at 5.6 min under a load of 4 with the ones above left out)
        "tests/workflows/releases/test_release_cli.py::test_release_commands_end_to_end",
        "tests/workflows/releases/test_release_manifests.py::test_released_splits_round_trip_through_an_official_release",
        "tests/cli/test_cli_hardening.py::test_catalog_ls_escapes_control_characters_and_prints_long_names_whole_in_a_pipe",
        "tests/cli/test_cli_hardening.py::test_snapshot_cli_refuses_a_release_folder_in_one_line",
        "tests/workflows/labels/test_prelabel.py::test_model_prelabels_carry_provenance_and_follow_exposure",
        "tests/workflows/catalog/test_robustness.py::test_kill_9_mid_ingest_leaves_a_consistent_catalog_and_rerun_finishes",
        "tests/cli/test_cli.py::test_snapshot_and_db_commands",
        "tests/workflows/users/test_login_hardening.py::test_cli_password_stdin_policy_and_demo_refusal",
        "tests/workflows/catalog/test_manifest_hardening.py::test_cli_refuses_with_one_line_and_exit_1",
        "tests/workflows/catalog/test_manifest_hardening.py::test_any_id_is_refused_naming_line_2_or_accepted_as_a_file_name",
        "tests/core/painting/test_stroke_limits.py::test_any_browser_stroke_is_refused_or_painted_within_the_budget",
        "tests/workflows/catalog/test_ingest_hardening.py::"
        "test_one_worker_peak_memory_on_a_large_16bit_png_stays_within_the_stated_bound",
        "tests/workflows/training/test_train_step.py::test_train_step_matches_a_hand_written_step",
        # issue 15 (quality): eight subprocesses (20 s quiet, 68 s under load)
        "tests/cli/test_cli_quality.py::test_quality_commands_end_to_end",
        # issue 13 (loadtest): one shared 0.3-min run of the team load test (34 s quiet, 61 s at load 7)
        "tests/pipelines/test_team_bench.py::test_counts_match_the_catalog_and_nothing_is_lost",
        "tests/pipelines/test_team_bench.py::test_a_dropped_stroke_is_reported_as_lost",
    }
)


def _listed_slow(nodeid: str) -> bool:
    """``path::test`` of SLOW_TESTS, whatever its parameters or a Hypothesis ``::runTest`` suffix."""
    parts = nodeid.split("[", 1)[0].split("::")
    return any("::".join(parts[:k]) in SLOW_TESTS for k in range(2, len(parts) + 1))


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config, items):
    """Everything under tests/app is a browser-lane test (``-m "not browser"`` leaves it out); SLOW_TESTS are slow."""
    browser, slow = pytest.mark.browser, pytest.mark.slow
    for item in items:
        if _APP_TESTS in Path(str(item.path)).resolve().parents:
            item.add_marker(browser)
        if _listed_slow(item.nodeid):
            item.add_marker(slow)
