"""Plans: the model (``model``), the planner (``planner``), renderers (``render``), plan files."""
