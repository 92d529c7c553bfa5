// Generated from the Rust types by `UPDATE_BINDINGS=1 cargo test -p avatar-studio bindings`.
// Do not edit by hand.

export type AppInfo = { version: string, 
/**
 * Trainings are simulated: nothing reaches fal and nothing is paid for.
 */
test_mode: boolean, library_dir: string, min_photos: number, max_photos: number, };

export type Avatar = { id: string, name: string, gender: Gender, training_type: TrainingType, status: AvatarStatus, 
/**
 * 0–100.
 */
training_progress: number, 
/**
 * The fal request id of the latest training, once submitted.
 */
finetune_id: string | null, 
/**
 * The guide's `fal_mode`: which trainer family the avatar uses.
 */
fal_mode: TrainingType, photo_count: number, created_at: string, updated_at: string, };

export type AvatarStatus = "draft" | "uploading" | "training" | "completed" | "error" | "cancelled";

export type ErrorCode = "invalid_input" | "not_found" | "invalid_config" | "library_too_new" | "library_unavailable" | "internal";

export type ErrorReport = { code: ErrorCode, message: string, };

export type Gender = "male" | "female" | "other";

export type TrainingType = "portrait" | "style";
