import { defineConfig } from 'vitest/config';

// Unit tests of the pure logic (protocol, presence, versions, room): node, no JupyterLab.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node'
  }
});
