"""DDP over gloo on CPU: a small classifier trained on scikit-learn's bundled handwritten digits.

The pieces every test case in this repository has, small enough to read in one sitting: typed
config with presets (``config``), rank-sharded offline data (``data``), a single-device model
(``model``), atomic checkpoints (``checkpoint``) and JSON step metrics (``metrics``).
"""
