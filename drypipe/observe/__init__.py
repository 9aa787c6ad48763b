"""Seeing a run from its database, during or after it: the trace of every attempt (trace.py),
the DAG as a mermaid flowchart (dag.py), the HTML report (report_html.py).

Importing this package imports nothing heavy: SQLAlchemy is loaded when an instance is opened."""
