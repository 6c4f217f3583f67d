/** `advertiseServedVersions` lives with the other SDK patches in `sdk-seam.ts`; this path stays for its importers. */
export { advertiseServedVersions } from './sdk-seam.js';
