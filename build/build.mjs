// `npm run build`: the bundle (dist/tsbal.cjs) and the self-contained executables.
import './bundle.mjs';
