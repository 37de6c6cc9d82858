import { calyxVitestConfig } from '../../tools/config/vitest.config.mjs';

export default calyxVitestConfig();
