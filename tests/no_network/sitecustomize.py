# Run at start-up by every Python whose PYTHONPATH holds this folder (tests' subprocesses): no network.
import network_guard

network_guard.install()
