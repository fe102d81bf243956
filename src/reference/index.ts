/** Image references: parsing, normalizing, and where a source image lands in a destination. */
export * from './reference.js';
export * from './destination.js';
