"""The ground floor: what every other package of src/ uses; it imports nothing of the project above it."""
