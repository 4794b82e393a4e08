"""Following a topic: residents are told when a new issue has articles on what they follow."""
