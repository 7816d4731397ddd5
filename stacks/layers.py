"""Lambda layers of pure-Python packages, built from the project's own virtualenv.

Each layer's ``layers/<name>/requirements.txt`` pins exact versions; requirements-dev.txt
installs them, and synth copies those installed files into the layer: no Docker, no
download, and a version that differs from the pin fails the synth by name.
"""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.config import ConfigError
from stacks.python_function import RUNTIME

LAYERS_DIR = Path(__file__).resolve().parent.parent / "layers"


def pinned_requirements(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file, by name."""
    pins: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            if not version:
                raise ConfigError(f"{path.name}: pin an exact version ({line!r})")
            pins[name.strip()] = version.strip()
    return pins


@jsii.implements(ILocalBundling)
class InstalledDistributions:
    """Bundles a layer by copying distributions already installed in this virtualenv (no
    Docker, no download), after checking each is the pinned version and pure Python."""

    def __init__(self, pins: dict[str, str]) -> None:
        self._pins = pins

    def try_bundle(self, output_dir: str, options: Any) -> bool:  # the options (an image) are never used
        target = Path(output_dir) / "python"  # where Lambda puts a layer's Python packages on sys.path
        for name, version in self._pins.items():
            try:
                distribution = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError as error:
                raise ConfigError(f"{name} is not installed: run `make install`") from error
            if distribution.version != version:
                raise ConfigError(f"{name} {distribution.version} is installed, the layer pins {version}")
            for file in distribution.files or []:
                if file.suffix in (".so", ".pyd"):
                    raise ConfigError(f"{name} has compiled code ({file}); the layer must be pure Python")
                if file.parts[0].endswith(".dist-info") or "__pycache__" in file.parts or file.parts[0] == "..":
                    continue
                source = Path(str(distribution.locate_file(file)))
                destination = target / Path(*file.parts)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, destination)
        return True


def python_layer(scope: Construct, construct_id: str, requirements: Path, description: str) -> lambda_.LayerVersion:
    """A layer of the distributions ``requirements`` pins, copied from this virtualenv."""
    return lambda_.LayerVersion(
        scope,
        construct_id,
        description=description,
        code=lambda_.Code.from_asset(
            str(requirements.parent),
            asset_hash_type=AssetHashType.OUTPUT,
            bundling=BundlingOptions(
                image=DockerImage.from_registry("unused-local-bundling"),
                local=InstalledDistributions(pinned_requirements(requirements)),  # type: ignore[arg-type]
            ),
        ),
        compatible_runtimes=[RUNTIME],
    )
