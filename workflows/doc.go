// Package workflows holds the Temporal workflow definitions of streamhooks:
// deterministic code only (no I/O, no wall clock, no config reads).
package workflows
