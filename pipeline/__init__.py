"""Below the commands, above bench: one request converted by one route in its own env
(``conversions``), and the envs themselves (``envs``)."""
