// Loaded by vitest before every test file (vitest.config.ts, setupFiles).
import { afterAll } from 'vitest';
import { dropLeftoverDatabases } from './test-database.ts';

afterAll(dropLeftoverDatabases);
