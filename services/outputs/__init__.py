"""OutputService: records what each step attempt produced and tells the scheduler."""
