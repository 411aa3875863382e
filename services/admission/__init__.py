"""AdmissionService: the front door that validates, stores and hands off workflows, and answers reads."""
