"""Subscribers: validate -> call the domain or an adapter -> reply. One module per area."""
