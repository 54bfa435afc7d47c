"""Small, deliberately vulnerable Flask apps that fixguard is shown protecting."""
