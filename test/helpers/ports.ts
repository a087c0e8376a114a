export { freePorts } from '../../src/pool/free-ports.ts';
