"""Real systems run locally for the demo and the tests (Tryton, Redmine, BottleCRM, mail).

Each module installs its system on first use into a cache folder, keeps a golden database
snapshot, and starts a fresh copy on a free port.
"""
