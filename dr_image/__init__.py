"""Image tooling: Docker engine, offline base images and wheelhouses, builds, containers run like the chart.

Developer tooling that works from a checkout (it reads the ``Dockerfile`` and ``docker/``); run its modules
with ``python -m dr_image.<module>`` or through ``make image*``. The predictor never imports it.
"""
