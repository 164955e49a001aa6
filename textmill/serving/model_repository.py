"""Finds, loads and unloads model versions under a TF Serving directory."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time

import tensorflow as tf
from tensorflow.core.protobuf import error_codes_pb2
from tensorflow_serving.apis import get_model_status_pb2

from textmill.serving.servable import SAVED_MODEL_PB, Servable, proto_json
from textmill.serving.serving_error import ServingError

logger = logging.getLogger(__name__)
_State = get_model_status_pb2.ModelVersionStatus.State


# Waits before a failed version is loaded again: 0.5 s, doubling, at most
# this long.
_FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 30.0


@dataclasses.dataclass(frozen=True)
class _Failure:
    """A version that failed to load: when to try again, and why."""

    attempts: int
    retry_at: float
    error_type: str

    def message(self) -> str:
        wait = max(0.0, self.retry_at - time.monotonic())
        return (
            f"failed to load ({self.error_type}, attempt {self.attempts}); "
            f"retrying in {wait:.1f} s; the server log has the details."
        )


def _child_names(path: str) -> list[str]:
    return [name.rstrip("/") for name in tf.io.gfile.listdir(path)]


class ModelRepository:
    """The models of `SERVING_DIR/MODEL_NAME/VERSION/`, kept loaded.

    A version is a directory named by an integer that holds a
    `saved_model.pb`; hidden names (a pusher's `.incoming-...` staging
    directory) and versions whose `saved_model.pb` is not there yet are
    skipped. For each model the newest `num_versions` versions are kept
    loaded, as TF Serving's default `latest` version policy does. `refresh()`
    loads new versions before it unloads old ones, so a model keeps
    answering while a new version loads, and calls every signature of a new
    version once (`Servable.warm_up`) before it takes traffic. A version
    that fails to load (e.g. one copied file by file, whose `variables/` is
    not there yet) is reported in the status and loaded again after 0.5 s,
    1 s, 2 s, ... (at most 30 s apart), as TF Serving retries failed loads;
    a version directory without `saved_model.pb` yet is reported as
    `START`.

    Args:
        base_dir: the serving directory, local or `gs://`.
        num_versions: how many of the newest versions to keep per model.

    Example:

    >>> repository = ModelRepository("/srv/models")
    >>> repository.refresh()
    >>> repository.servable("lm").version
    1795830000
    """

    def __init__(self, base_dir: str, num_versions: int = 1):
        if num_versions < 1:
            raise ValueError(
                f"num_versions must be >= 1, got {num_versions}; keep at "
                "least the newest version loaded."
            )
        self.base_dir = base_dir
        self.num_versions = num_versions
        # Replaced, never mutated, so readers need no lock.
        self._models: dict[str, dict[int, Servable]] = {}
        self._failed: dict[tuple[str, int], _Failure] = {}
        self._incomplete: dict[str, list[int]] = {}
        self._loading: set[tuple[str, int]] = set()
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # Discovery.

    def _complete_versions(self) -> dict[str, list[int]]:
        """Model name -> sorted versions whose saved_model.pb exists (the
        others go to `_incomplete`)."""
        found, incomplete = {}, {}
        for name in _child_names(self.base_dir):
            model_dir = os.path.join(self.base_dir, name)
            if name.startswith(".") or not tf.io.gfile.isdir(model_dir):
                continue
            versions, partial = set(), set()
            for child in _child_names(model_dir):
                if not child.isdigit():
                    continue
                if tf.io.gfile.exists(
                    os.path.join(model_dir, child, SAVED_MODEL_PB)
                ):
                    versions.add(int(child))
                else:
                    partial.add(int(child))
            found[name] = sorted(versions)
            incomplete[name] = sorted(partial)
        self._incomplete = incomplete
        return found

    def _version_dir(self, name: str, version: int) -> str:
        model_dir = os.path.join(self.base_dir, name)
        for child in _child_names(model_dir):
            if child.isdigit() and int(child) == version:
                return os.path.join(model_dir, child)
        raise FileNotFoundError(f"{model_dir} has no version {version}")

    # Loading.

    def _wanted(self, name: str, versions: list[int]) -> list[int]:
        now = time.monotonic()
        usable = [
            v
            for v in versions
            if (name, v) not in self._failed
            or self._failed[(name, v)].retry_at <= now
        ]
        return usable[-self.num_versions :]

    def _publish(self, name: str, servables: dict[int, Servable]) -> None:
        with self._lock:
            models = dict(self._models)
            if servables:
                models[name] = servables
            else:
                models.pop(name, None)
            self._models = models

    def _load(self, name: str, version: int) -> None:
        self._loading.add((name, version))
        try:
            path = self._version_dir(name, version)
            logger.info(
                "Loading model %s version %s from %s", name, version, path
            )
            servable = Servable(name, version, path)
            servable.warm_up()
        except Exception as e:  # any load failure is reported, not raised
            previous = self._failed.get((name, version))
            attempts = 1 if previous is None else previous.attempts + 1
            wait = min(
                MAX_RETRY_SECONDS, _FIRST_RETRY_SECONDS * 2 ** (attempts - 1)
            )
            logger.error(
                "Model %s version %s failed to load (attempt %s, next in "
                "%.1f s): %s",
                name,
                version,
                attempts,
                wait,
                e,
            )
            self._failed[(name, version)] = _Failure(
                attempts, time.monotonic() + wait, type(e).__name__
            )
            return
        finally:
            self._loading.discard((name, version))
        self._failed.pop((name, version), None)
        self._publish(name, {**self._models.get(name, {}), version: servable})
        logger.info(
            "Serving model %s version %s (signatures: %s)",
            name,
            version,
            ", ".join(servable.signature_names),
        )

    def refresh(self) -> None:
        """Scans the serving directory once: loads new versions, then
        unloads versions that are gone or older than the newest ones kept.

        Raises:
            FileNotFoundError: the serving directory does not exist.
        """
        if not tf.io.gfile.isdir(self.base_dir):
            raise FileNotFoundError(
                f"serving directory {self.base_dir} does not exist; pass the "
                "directory a pipeline pushes to (--serving-dir of `textmill "
                "run`)."
            )
        with self._refresh_lock:
            found = self._complete_versions()
            self._failed = {
                key: error
                for key, error in self._failed.items()
                if key[1] in found.get(key[0], [])
            }
            for name, versions in found.items():
                while True:
                    loaded = self._models.get(name, {})
                    missing = [
                        v
                        for v in self._wanted(name, versions)
                        if v not in loaded
                    ]
                    if not missing or self._stop.is_set():
                        break
                    self._load(name, missing[-1])
                wanted = self._wanted(name, versions)
                loaded = self._models.get(name, {})
                kept = {v: s for v, s in loaded.items() if v in wanted}
                for version in sorted(set(loaded) - set(kept)):
                    logger.info("Unloading model %s version %s", name, version)
                self._publish(name, kept)
            for name in set(self._models) - set(found):
                logger.info("Unloading model %s: its directory is gone", name)
                self._publish(name, {})

    # Polling.

    def _poll(self, poll_seconds: float) -> None:
        while not self._stop.wait(poll_seconds):
            try:
                self.refresh()
            except (OSError, tf.errors.OpError) as e:
                logger.warning(
                    "Scanning %s failed, will retry: %s", self.base_dir, e
                )

    def start_polling(self, poll_seconds: float) -> None:
        """Refreshes every `poll_seconds` in a background thread."""
        if poll_seconds <= 0:
            raise ValueError(
                f"poll_seconds must be > 0, got {poll_seconds}; pass e.g. 2."
            )
        self._stop.clear()
        self._poller = threading.Thread(
            target=self._poll,
            args=(poll_seconds,),
            name="model-repository-poll",
            daemon=True,
        )
        self._poller.start()

    def stop_polling(self, timeout: float = 30.0) -> None:
        """Stops the background thread (waits up to `timeout` seconds)."""
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout)
            self._poller = None

    # Lookup.

    @property
    def model_names(self) -> list[str]:
        """Names of the models with at least one version loaded."""
        return sorted(self._models)

    def _unknown_model(self, name: str) -> ServingError:
        served = ", ".join(self.model_names) or "none"
        return ServingError(
            404,
            f"model '{name}' not found; models served: {served}.",
        )

    def servable(self, name: str, version: int | None = None) -> Servable:
        """The newest loaded version of `name`, or exactly `version`.

        Raises:
            ServingError: 404 for an unknown model or a version not loaded.
        """
        versions = self._models.get(name)
        if not versions:
            raise self._unknown_model(name)
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise ServingError(
                404,
                f"model '{name}' has no version {version} loaded; loaded: "
                f"{', '.join(map(str, sorted(versions)))} (the server keeps "
                f"the newest {self.num_versions} version(s), --num-versions).",
            )
        return versions[version]

    def status(self, name: str, version: int | None = None) -> dict:
        """TF Serving's GetModelStatus response for a model or one version.

        Raises:
            ServingError: 404 when the model or version is unknown.
        """
        response = get_model_status_pb2.GetModelStatusResponse()
        states = {
            v: (_State.START, "incomplete: no saved_model.pb yet")
            for v in self._incomplete.get(name, [])
        }
        for key, failure in list(self._failed.items()):
            if key[0] == name:
                states[key[1]] = (_State.END, failure.message())
        states.update(
            {v: (_State.AVAILABLE, "") for v in self._models.get(name, {})}
        )
        for key in list(self._loading):
            if key[0] == name:
                states[key[1]] = (_State.LOADING, "")
        if not states:
            raise self._unknown_model(name)
        if version is not None:
            if version not in states:
                raise ServingError(
                    404,
                    f"model '{name}' has no version {version}; known: "
                    f"{', '.join(map(str, sorted(states)))}.",
                )
            states = {version: states[version]}
        for v in sorted(states, reverse=True):
            state, error = states[v]
            entry = response.model_version_status.add()
            entry.version = v
            entry.state = state
            entry.status.SetInParent()
            if error:
                entry.status.error_code = error_codes_pb2.UNKNOWN
                entry.status.error_message = error
        return proto_json(response)
