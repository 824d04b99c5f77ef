// Races a–d run through the inline helper and through the decorators (pattern-races.ts).
import { decoratorPattern, inlinePattern } from './inline-decorator-patterns.js';
import { runPatternRaces } from './pattern-races.js';

runPatternRaces('inline helper', inlinePattern);
runPatternRaces('decorators', decoratorPattern);
