import KilnOCI
// Test support: real servers and tools for integration tests.
