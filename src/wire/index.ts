export * from './errors.ts';
export * from './fields.ts';
export * from './frame.ts';
export * from './frame-decoder.ts';
export * from './hmac.ts';
