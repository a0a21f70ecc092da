"""Llama 3.1 run configs for torchtitan 0.3.0, in its own format: ``config_registry`` functions that
return a ``Trainer.Config``. Select one with ``--module aws_llama3 --config <name>`` (``src/`` on
``PYTHONPATH``); ``--section.field value`` overrides any field."""
