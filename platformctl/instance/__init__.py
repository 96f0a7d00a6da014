"""Instance settings as code (#35): the Airflow pools and connections each environment's instance must have.

- settings.py: what is declared (environments/<env>.yaml pools/connections; the built-in `local` derives its
  own from the flavors and the other environments)
- check.py:    what the pipelines need of every environment they can deploy to (make render / plan)
- api.py:      the instance's REST API (/api/v2/pools, /api/v2/connections/{id}), ids and types only
- sync.py:     read the instance, diff it against the declaration, apply pool changes (typed results)
"""
