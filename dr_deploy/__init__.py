"""``dr-serving deploy``: the Helm release (``release``), the cluster's InferenceServices and pods
(``cluster``), the checks before and after an install (``preflight``) and the command line (``commands``)."""
