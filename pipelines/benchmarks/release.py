"""Release benchmark: build two releases of a synthetic 40,000-image catalog; verify vs sha256sum.

Run: ``python -m pipelines.benchmarks.release [--images 40000] [--side 16] [--formats native]
[--repeats 3] [--out FILE]``.

The catalog is made directly in SQL (scenes of a reference and 4 variants; a score and a
refdiff label per variant; tiny PNG files and thumbnails), so that the figure is the release
build alone: gather, leak checks (sha256 + dHash of every thumbnail), the read-only image
store, hard links, maps, Parquet tables, the card and the manifest. The first build copies
each photo once into the workspace's image store (``objects/images/``, checked against its
sha256); the second build (another version of the same catalog) copies nothing. Goals:
each build <= 60 s; no release image shares the photo's inode (all share the store's); the
second release adds no image bytes (``du`` over photos + store + both releases counts each
image twice: the photo and its one stored copy); verify throughput in MB/s beside
``sha256sum`` over the same files.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np


def make_catalog(root: Path, n_images: int, side: int, per_scene: int = 5):
    """A workspace whose catalog holds ``n_images`` tiny PNGs in scenes of ``per_scene``: the first image of each
    scene is its reference, the others are variants with a score and a refdiff label."""
    import cv2
    from sqlalchemy import bindparam, update

    from iea_data.store import Image, ImagePath, Label, Scene, Score, utcnow
    from iea_data.store.workspace import init_workspace

    ws = init_workspace(root / "ws")
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    now = utcnow()
    n_scenes = -(-n_images // per_scene)
    images, paths, scores, labels, refs = [], [], [], [], []
    store = ws.objects
    for i in range(n_images):
        scene, v = divmod(i, per_scene)
        pix = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        png = cv2.imencode(".png", pix)[1].tobytes()
        p = photos / (f"s{scene:05d}.png" if v == 0 else f"s{scene:05d}_N{v}.png")
        p.write_bytes(png)
        st = p.stat()
        sha = hashlib.sha256(png).hexdigest()
        thumb = store.put_bytes(png, durable=False)
        residual = rng.uniform(-0.5, 0.5, (side, side)).astype(np.float16)
        buf = io.BytesIO()
        np.save(buf, residual, allow_pickle=False)
        map_key = store.put_bytes(buf.getvalue(), durable=False)
        images.append(
            {
                "id": i + 1,
                "sha256": sha,
                "name": p.name,
                "status": "ok",
                "scene_id": scene + 1,
                "variant": f"N{v}" if v else None,
                "format": "PNG",
                "mode": "RGB",
                "width": side,
                "height": side,
                "channels": 3,
                "bit_depth": 8,
                "file_size": len(png),
                "thumbnail": thumb,
                "luma_mean": float(pix.mean() / 255),
                "created_at": now,
                "updated_at": now,
            }
        )
        paths.append(
            {"image_id": i + 1, "path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "seen_at": now}
        )
        if v == 0:
            refs.append({"b_id": scene + 1, "b_ref": i + 1})
            continue
        scores.append({"image_id": i + 1, "value": float(rng.uniform(0, 10)), "source": "bench", "created_at": now})
        labels.append(
            {
                "image_id": i + 1,
                "kind": "refdiff",
                "chain": "refdiff",
                "revision": 1,
                "status": "draft",
                "map_object": map_key,
                "height": side,
                "width": side,
                "created_at": now,
                "updated_at": now,
            }
        )
    with ws.session() as s:
        with s.begin():
            s.execute(
                Scene.__table__.insert(),
                [{"id": k + 1, "name": f"s{k:05d}", "source": "bench", "created_at": now} for k in range(n_scenes)],
            )
            for table, rows in ((Image, images), (ImagePath, paths), (Score, scores), (Label, labels)):
                for j in range(0, len(rows), 5000):
                    s.execute(table.__table__.insert(), rows[j : j + 5000])
            s.execute(
                update(Scene.__table__)
                .where(Scene.__table__.c.id == bindparam("b_id"))
                .values(reference_image_id=bindparam("b_ref")),
                refs,
            )
    return ws, photos


def du_kib(*paths: Path) -> int:
    """Disk use in KiB of the paths together (``du`` counts each hard-linked inode once)."""
    out = subprocess.run(["du", "-sck", *map(str, paths)], capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1].split()[0])


def sha256sum_seconds(root: Path, files: list[str], jobs: int) -> float:
    listing = "\0".join(files).encode() + b"\0"
    t = time.perf_counter()
    subprocess.run(
        ["xargs", "-0", "-n", "2000", "-P", str(jobs), "sha256sum"],
        input=listing,
        cwd=root,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - t


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=40_000)
    ap.add_argument("--side", type=int, default=16, help="pixel side of the synthetic PNGs and maps")
    ap.add_argument(
        "--formats", default="native", help="comma-separated; official writes a 256x256 float32 map (256 KiB) per image"
    )
    ap.add_argument("--repeats", type=int, default=3, help="verify / sha256sum rounds (best kept)")
    ap.add_argument("--out", type=Path, default=Path(".bench/release.json"))
    args = ap.parse_args(argv)
    from iea_data.store import dispose_engines
    from iea_data.workflows.releases import build_release, verify_release

    os.environ.pop("IEA_DATABASE_URL", None)
    tmp = Path(tempfile.mkdtemp(prefix="iea-bench-release-"))
    try:
        t = time.perf_counter()
        ws, photos = make_catalog(tmp, args.images, args.side)
        t_catalog = time.perf_counter() - t
        formats = tuple(f for f in args.formats.split(",") if f)
        # CPU seconds beside wall seconds: on a shared machine the wall figure moves with the load
        t, c = time.perf_counter(), time.process_time()
        rep = build_release(ws, "bench", "1.0.0", labels="refdiff", formats=formats, ratios=(0.8, 0.1, 0.1))
        t_build, c_build = time.perf_counter() - t, time.process_time() - c
        t, c = time.perf_counter(), time.process_time()
        rep2 = build_release(ws, "bench", "1.1.0", labels="refdiff", formats=formats, ratios=(0.8, 0.1, 0.1))
        t_build2, c_build2 = time.perf_counter() - t, time.process_time() - c
        load = os.getloadavg()[0]
        root, root2 = Path(rep.path), Path(rep2.path)
        images_store = ws.objects.root / "images"
        # release images are the store's inodes, never the photos'; the second release stores nothing
        src_inodes = {os.stat(p).st_ino for p in photos.iterdir()}
        store_inodes = {p.stat().st_ino for p in images_store.rglob("*") if p.is_file()}
        manifest = json.loads((root / "manifest.json").read_text())
        image_files = [f["path"] for f in manifest["files"] if f.get("mode") in ("hardlink", "copy")]
        inodes = [os.stat(root / f).st_ino for f in image_files]
        linked = sum(i in store_inodes for i in inodes)
        sharing_photo = sum(i in src_inodes for i in inodes)
        image_bytes = sum(f["size"] for f in manifest["files"] if f.get("mode") in ("hardlink", "copy"))
        du_photos = du_kib(photos)
        du_store = du_kib(images_store)
        du_release_alone = du_kib(root)
        du_together = du_kib(photos, images_store, root)
        du_two = du_kib(photos, images_store, root, root2)
        # verify vs sha256sum over the same files, interleaved, best of N
        files = [f["path"] for f in manifest["files"]]
        jobs = os.cpu_count() or 1
        ver, s1, sp = [], [], []
        for _ in range(args.repeats):
            v = verify_release(root)
            assert v.ok, (v.changed[:3], v.missing[:3], v.extra[:3])
            ver.append(v.seconds)
            s1.append(sha256sum_seconds(root, files, 1))
            sp.append(sha256sum_seconds(root, files, jobs))
        mb = v.n_bytes / 1e6
        result = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d"),
            "images": args.images,
            "image_side_px": args.side,
            "formats": list(formats),
            "catalog_setup_s": round(t_catalog, 2),
            "build_s": round(t_build, 2),
            "second_build_s": round(t_build2, 2),
            "build_cpu_s": round(c_build, 2),
            "second_build_cpu_s": round(c_build2, 2),
            "load_average_1min": round(load, 1),
            "build_goal_s": 60,
            "first_build_images_stored": rep.n_images_stored,
            "first_build_bytes_stored": rep.n_bytes_stored,
            "second_build_images_stored": rep2.n_images_stored,
            "second_build_bytes_stored": rep2.n_bytes_stored,
            "release_files": rep.n_files,
            "image_files_in_release": len(image_files),
            "image_files_sharing_store_inode": linked,
            "image_files_sharing_photo_inode": sharing_photo,
            "link_modes": rep.link_modes,
            "image_bytes_linked": image_bytes,
            "bytes_written": rep.n_bytes_written,
            "du_photos_kib": du_photos,
            "du_image_store_kib": du_store,
            "du_release_alone_kib": du_release_alone,
            "du_photos_store_release_kib": du_together,
            "release_adds_kib": du_together - du_photos - du_store,
            "du_photos_store_two_releases_kib": du_two,
            "second_release_adds_kib": du_two - du_together,
            "verify_files": len(files) + 1,
            "verify_mb": round(mb, 2),
            "verify_s": round(min(ver), 3),
            "verify_mb_per_s": round(mb / min(ver), 2),
            "sha256sum_1proc_s": round(min(s1), 3),
            "sha256sum_1proc_mb_per_s": round(mb / min(s1), 2),
            f"sha256sum_{jobs}proc_s": round(min(sp), 3),
            f"sha256sum_{jobs}proc_mb_per_s": round(mb / min(sp), 2),
        }
        dispose_engines()
    finally:
        from iea_data.workflows.releases import remove_release_tree

        try:
            remove_release_tree(tmp)  # the releases are read-only: folders get their write bit back first
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"release benchmark ({result['machine']}, {result['date']}, {args.images} images of "
        f"{args.side}x{args.side} px, "
        f"formats {','.join(formats)})"
    )
    print(
        f"  first build                {result['build_s']:.1f} s (goal <= 60; {c_build:.1f} s CPU, load {load:.1f}), "
        f"stored {rep.n_images_stored} images, "
        f"{rep.n_bytes_stored / 1e6:.1f} MB  [catalog setup {result['catalog_setup_s']:.1f} s]"
    )
    print(
        f"  second build               {result['second_build_s']:.1f} s (goal <= 60; {c_build2:.1f} s CPU), "
        f"stored {rep2.n_images_stored} images, "
        f"{rep2.n_bytes_stored} bytes"
    )
    print(
        f"  image files hard-linked    {linked}/{len(image_files)} share the store's inode, "
        f"{sharing_photo} the photo's; "
        f"du photos {du_photos} KiB, store {du_store} KiB, release alone {du_release_alone} KiB, "
        f"photos + store + release {du_together} KiB (the release adds {result['release_adds_kib']} KiB: "
        f"maps, tables, "
        f"card); a second release adds {result['second_release_adds_kib']} KiB"
    )
    print(
        f"  verify                     {result['verify_s']:.2f} s for {result['verify_files']} files, {mb:.1f} MB "
        f"-> {result['verify_mb_per_s']:.1f} MB/s"
    )
    print(
        f"  sha256sum, same files      1 process {result['sha256sum_1proc_s']:.2f} s "
        f"({result['sha256sum_1proc_mb_per_s']:.1f} MB/s); "
        f"{jobs} processes {result[f'sha256sum_{jobs}proc_s']:.2f} s "
        f"({result[f'sha256sum_{jobs}proc_mb_per_s']:.1f} MB/s)"
    )
    return result


if __name__ == "__main__":
    main()
