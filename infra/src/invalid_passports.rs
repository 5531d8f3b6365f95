//! The list of invalid passports published by the MVD, loaded into Postgres and looked up by
//! primary key (seed 000, 6.11).
//!
//! The file is CSV with a header line `PASSP_SERIES,PASSP_NUMBER` and one passport per line,
//! series and number as digits (`6004,123456`). A load streams the file into a staging table
//! with `COPY` and replaces the list in the same transaction, so readers see the old list or
//! the new one, never a mix; the load is recorded in `invalid_passport_loads`. Lines that are
//! not a 4-digit series and a 6-digit number (the published file has some) are skipped and
//! counted, never loaded half-parsed.

use etr_domain::identity::PassportNumber;
use sqlx::PgPool;
use std::io::BufRead;

use crate::error::Result;

/// What a load did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Loaded {
    /// Data lines read (the header not counted).
    pub rows_read: u64,
    /// Distinct passports on the list after the load.
    pub listed: u64,
    /// Lines skipped as malformed.
    pub skipped: u64,
}

/// How many lines go to Postgres in one `COPY` chunk.
const CHUNK_LINES: usize = 50_000;

/// The canonical `series\tnumber` of a list line, or `None` when it is not a passport.
fn parse_line(line: &str) -> Option<(&str, &str)> {
    let (series, number) = line.trim().split_once(',')?;
    let (series, number) = (series.trim(), number.trim());
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    (digits(series, 4) && digits(number, 6)).then_some((series, number))
}

/// Replaces the list with the passports read from `input` (named `source` in the load
/// record). `progress` is called with the bytes read so far after every chunk.
///
/// Errors: reading `input`; Postgres (nothing of the load is then visible).
pub async fn load(
    pool: &PgPool,
    source: &str,
    input: impl BufRead,
    mut progress: impl FnMut(u64),
) -> Result<Loaded> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "CREATE TEMP TABLE invalid_passports_staging (series CHAR(4), number CHAR(6)) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let mut rows_read = 0u64;
    let mut skipped = 0u64;
    let mut bytes = 0u64;
    let mut chunk = String::with_capacity(CHUNK_LINES * 12);
    let mut lines_in_chunk = 0usize;
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        bytes += line.len() as u64 + 1;
        if n == 0
            && line
                .trim()
                .eq_ignore_ascii_case("PASSP_SERIES,PASSP_NUMBER")
        {
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        rows_read += 1;
        match parse_line(&line) {
            Some((series, number)) => {
                chunk.push_str(series);
                chunk.push('\t');
                chunk.push_str(number);
                chunk.push('\n');
                lines_in_chunk += 1;
            }
            None => skipped += 1,
        }
        if lines_in_chunk >= CHUNK_LINES {
            copy_chunk(&mut tx, &chunk).await?;
            chunk.clear();
            lines_in_chunk = 0;
            progress(bytes);
        }
    }
    if lines_in_chunk > 0 {
        copy_chunk(&mut tx, &chunk).await?;
    }
    progress(bytes);
    sqlx::query("DELETE FROM invalid_passports")
        .execute(&mut *tx)
        .await?;
    let listed = sqlx::query(
        "INSERT INTO invalid_passports (series, number) \
         SELECT DISTINCT series, number FROM invalid_passports_staging",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO invalid_passport_loads (source, rows_read, listed, skipped) VALUES ($1, $2, $3, $4)",
    )
    .bind(source)
    .bind(to_i64(rows_read))
    .bind(to_i64(listed))
    .bind(to_i64(skipped))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Loaded {
        rows_read,
        listed,
        skipped,
    })
}

async fn copy_chunk(tx: &mut sqlx::PgConnection, chunk: &str) -> Result<()> {
    let mut copy = tx
        .copy_in_raw("COPY invalid_passports_staging (series, number) FROM STDIN")
        .await?;
    copy.send(chunk.as_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

/// Whether `passport` is on the list.
///
/// Errors: Postgres.
pub async fn is_invalid(pool: &PgPool, passport: &PassportNumber) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM invalid_passports WHERE series = $1 AND number = $2)",
    )
    .bind(passport.series())
    .bind(passport.number())
    .fetch_one(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn list_lines() {
        assert_eq!(parse_line("6004,123456"), Some(("6004", "123456")));
        assert_eq!(parse_line(" 6004 , 123456 \r"), Some(("6004", "123456")));
        for bad in [
            "6004,12345",
            "600,123456",
            "6004;123456",
            "60O4,123456",
            "6004",
            "",
        ] {
            assert_eq!(parse_line(bad), None, "{bad}");
        }
    }
}
