/**
 * The package version, written into every OTLP scope (`otlp-edge-agent` + this). A unit test keeps it equal to
 * package.json's.
 */
export const VERSION = '0.1.0';
